/* Loads libgit2 on first use: see shim.h. */
#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* The library of the version whose headers this was built with. */
#ifdef __APPLE__
#define TSUKU_GIT2_LIBRARY "libgit2." LIBGIT2_SOVERSION ".dylib"
#else
#define TSUKU_GIT2_LIBRARY "libgit2.so." LIBGIT2_SOVERSION
#endif

static struct {
#define TSUKU_FN(ret, name, params, args) ret(*p_##name) params;
#define TSUKU_VOID(name, params, args) void(*p_##name) params;
#include "git2_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID
  int (*p_git_libgit2_opts)(int, ...);
} fns;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];

static void *symbol(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p && !failure[0]) snprintf(failure, sizeof failure, "%s has no function %s: %s", TSUKU_GIT2_LIBRARY, name, dlerror());
  return p;
}

static void load(void) {
  void *lib = dlopen(TSUKU_GIT2_LIBRARY, RTLD_LAZY | RTLD_LOCAL);
  if (!lib) {
    snprintf(failure, sizeof failure, "cannot load libgit2 (%s), which git sources need: %s (install libgit2-%s)",
             TSUKU_GIT2_LIBRARY, dlerror(), LIBGIT2_SOVERSION);
    return;
  }
#define TSUKU_FN(ret, name, params, args) fns.p_##name = (ret(*) params)symbol(lib, #name);
#define TSUKU_VOID(name, params, args) fns.p_##name = (void(*) params)symbol(lib, #name);
#include "git2_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID
  fns.p_git_libgit2_opts = (int (*)(int, ...))symbol(lib, "git_libgit2_opts");
}

const char *tsuku_git2_load(void) {
  pthread_once(&once, load);
  return failure[0] ? failure : NULL;
}

static void require(void) {
  const char *why = tsuku_git2_load();
  if (why) {
    fprintf(stderr, "error: %s\n", why);
    exit(5);
  }
}

#define TSUKU_FN(ret, name, params, args) \
  ret tsuku_##name params {               \
    require();                            \
    return fns.p_##name args;             \
  }
#define TSUKU_VOID(name, params, args) \
  void tsuku_##name params {           \
    require();                         \
    fns.p_##name args;                 \
  }
#include "git2_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID

int tsuku_git_set_cache_max_size(long long bytes) {
  require();
  return fns.p_git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}

int tsuku_git_set_mwindow(size_t window, size_t mapped_limit) {
  require();
  int rc = fns.p_git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, window);
  return rc < 0 ? rc : fns.p_git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, mapped_limit);
}
