#ifndef TSUKU_CGIT2_SHIM_H
#define TSUKU_CGIT2_SHIM_H
/* libgit2, loaded when a command first opens a git source, not at process start (see the
   CCurl shim for why). The headers give the types; every function is called as tsuku_NAME,
   which loads the libgit2 of the headers' version once (dlopen) and calls NAME through a
   pointer. The program does not link libgit2, so a direct call of git_NAME fails to link. */
#include <git2.h>

/* NULL when libgit2 is loaded (loading it on the first call), else why it could not be: one
   line. A tsuku_git_ function called when the library could not be loaded prints that line
   and exits with status 5 (unavailable). */
const char *tsuku_git2_load(void);

#define TSUKU_FN(ret, name, params, args) ret tsuku_##name params;
#define TSUKU_VOID(name, params, args) void tsuku_##name params;
#include "git2_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID

/* The oid field is an inline array, which Swift imports as a tuple; these keep byte access simple. */
static inline const unsigned char *tsuku_git_oid_bytes(const git_oid *oid) { return oid->id; }
static inline void tsuku_git_oid_set(git_oid *oid, const unsigned char *bytes) {
  for (int i = 0; i < GIT_OID_RAWSZ; i++) oid->id[i] = bytes[i];
}

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option used. */
int tsuku_git_set_cache_max_size(long long bytes);
int tsuku_git_set_mwindow(size_t window, size_t mapped_limit);
#endif
