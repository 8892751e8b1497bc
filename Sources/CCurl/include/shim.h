#ifndef TSUKU_CCURL_SHIM_H
#define TSUKU_CCURL_SHIM_H
/* libcurl, loaded when a command first needs the network, not at process start: the library and
   the ~40 it depends on (Kerberos, LDAP, GnuTLS, ...) cost milliseconds of every start, and a read
   from the cache uses none of them. The headers give the types; every function is called as
   tsuku_NAME, which loads libcurl.so.4 once (dlopen) and calls NAME through a pointer. The program
   does not link libcurl, so a direct call of curl_NAME fails to link. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

/* NULL when libcurl is loaded (loading it on the first call), else why it could not be: one line.
   Call it before anything else; a tsuku_curl_ function called when the library could not be
   loaded prints that line and exits with status 5 (unavailable). */
const char *tsuku_curl_load(void);

#define TSUKU_FN(ret, name, params, args) ret tsuku_##name params;
#define TSUKU_VOID(name, params, args) void tsuku_##name params;
#include "curl_functions.def"
#undef TSUKU_FN
#undef TSUKU_VOID

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift cannot call them directly. */
CURLcode tsuku_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode tsuku_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode tsuku_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode tsuku_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
CURLcode tsuku_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v);
CURLcode tsuku_curl_setopt_write(CURL *h, size_t (*f)(char *, size_t, size_t, void *));
CURLcode tsuku_curl_setopt_header(CURL *h, size_t (*f)(char *, size_t, size_t, void *));
CURLcode tsuku_curl_setopt_read(CURL *h, size_t (*f)(char *, size_t, size_t, void *));
CURLcode tsuku_curl_setopt_xferinfo(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t));
CURLcode tsuku_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode tsuku_curl_getinfo_double(CURL *h, CURLINFO i, double *v);
CURLcode tsuku_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v);

/* curl_multi_setopt is variadic too. */
CURLMcode tsuku_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v);

/* Constants that are macros of a type Swift does not import as a plain number. */
static const long tsuku_curl_global_default = CURL_GLOBAL_DEFAULT;
static const long tsuku_curlpipe_multiplex = CURLPIPE_MULTIPLEX;
static const int tsuku_curl_error_size = CURL_ERROR_SIZE;
#endif
