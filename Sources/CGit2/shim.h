#ifndef TSUKU_CGIT2_SHIM_H
#define TSUKU_CGIT2_SHIM_H
#include <git2.h>

/* The oid field is an inline array, which Swift imports as a tuple; these keep byte access simple. */
static inline const unsigned char *tsuku_git_oid_bytes(const git_oid *oid) { return oid->id; }
static inline void tsuku_git_oid_set(git_oid *oid, const unsigned char *bytes) {
  for (int i = 0; i < GIT_OID_RAWSZ; i++) oid->id[i] = bytes[i];
}
#endif
