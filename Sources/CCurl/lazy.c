/* Loads libcurl on first use: see shim.h. */
#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __APPLE__
#define TSUKU_CURL_LIBRARY "libcurl.4.dylib"
#else
#define TSUKU_CURL_LIBRARY "libcurl.so.4"
#endif

static struct {
#define TSUKU_FN(ret, name, params, args) ret(*p_##name) params;
#define TSUKU_VOID(name, params, args) void(*p_##name) params;
#include "curl_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID
  CURLcode (*p_curl_easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*p_curl_easy_getinfo)(CURL *, CURLINFO, ...);
  CURLMcode (*p_curl_multi_setopt)(CURLM *, CURLMoption, ...);
} fns;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];

static void *symbol(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p && !failure[0]) snprintf(failure, sizeof failure, "%s has no function %s: %s", TSUKU_CURL_LIBRARY, name, dlerror());
  return p;
}

static void load(void) {
  void *lib = dlopen(TSUKU_CURL_LIBRARY, RTLD_LAZY | RTLD_LOCAL);
  if (!lib) {
    snprintf(failure, sizeof failure, "cannot load libcurl (%s), which network sources need: %s (install libcurl4)",
             TSUKU_CURL_LIBRARY, dlerror());
    return;
  }
#define TSUKU_FN(ret, name, params, args) fns.p_##name = (ret(*) params)symbol(lib, #name);
#define TSUKU_VOID(name, params, args) fns.p_##name = (void(*) params)symbol(lib, #name);
#include "curl_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID
  fns.p_curl_easy_setopt = (CURLcode(*)(CURL *, CURLoption, ...))symbol(lib, "curl_easy_setopt");
  fns.p_curl_easy_getinfo = (CURLcode(*)(CURL *, CURLINFO, ...))symbol(lib, "curl_easy_getinfo");
  fns.p_curl_multi_setopt = (CURLMcode(*)(CURLM *, CURLMoption, ...))symbol(lib, "curl_multi_setopt");
}

const char *tsuku_curl_load(void) {
  pthread_once(&once, load);
  return failure[0] ? failure : NULL;
}

static void require(void) {
  const char *why = tsuku_curl_load();
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
#include "curl_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID

CURLcode tsuku_curl_setopt_long(CURL *h, CURLoption o, long v) { require(); return fns.p_curl_easy_setopt(h, o, v); }
CURLcode tsuku_curl_setopt_string(CURL *h, CURLoption o, const char *v) { require(); return fns.p_curl_easy_setopt(h, o, v); }
CURLcode tsuku_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { require(); return fns.p_curl_easy_setopt(h, o, v); }
CURLcode tsuku_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { require(); return fns.p_curl_easy_setopt(h, o, v); }
CURLcode tsuku_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { require(); return fns.p_curl_easy_setopt(h, o, v); }
CURLcode tsuku_curl_setopt_write(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  require();
  return fns.p_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f);
}
CURLcode tsuku_curl_setopt_header(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  require();
  return fns.p_curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, f);
}
CURLcode tsuku_curl_setopt_read(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  require();
  return fns.p_curl_easy_setopt(h, CURLOPT_READFUNCTION, f);
}
CURLcode tsuku_curl_setopt_xferinfo(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
  require();
  return fns.p_curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f);
}
CURLcode tsuku_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { require(); return fns.p_curl_easy_getinfo(h, i, v); }
CURLcode tsuku_curl_getinfo_double(CURL *h, CURLINFO i, double *v) { require(); return fns.p_curl_easy_getinfo(h, i, v); }
CURLcode tsuku_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v) { require(); return fns.p_curl_easy_getinfo(h, i, v); }
CURLMcode tsuku_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { require(); return fns.p_curl_multi_setopt(m, o, v); }
