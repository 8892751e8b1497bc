#ifndef TSUKU_CGIT2_SHIM_H
#define TSUKU_CGIT2_SHIM_H
#include <git2.h>

/* The oid field is an inline array, which Swift imports as a tuple; these keep byte access simple. */
static inline const unsigned char *tsuku_git_oid_bytes(const git_oid *oid) { return oid->id; }
static inline void tsuku_git_oid_set(git_oid *oid, const unsigned char *bytes) {
  for (int i = 0; i < GIT_OID_RAWSZ; i++) oid->id[i] = bytes[i];
}

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option used. */
static inline int tsuku_git_set_cache_max_size(long long bytes) {
  return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}
static inline int tsuku_git_set_mwindow(size_t window, size_t mapped_limit) {
  int rc = git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, window);
  return rc < 0 ? rc : git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, mapped_limit);
}
#endif
