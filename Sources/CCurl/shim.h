#ifndef TSUKU_CCURL_SHIM_H
#define TSUKU_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift cannot call them directly. */
static inline CURLcode tsuku_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tsuku_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tsuku_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tsuku_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tsuku_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tsuku_curl_setopt_write(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f);
}
static inline CURLcode tsuku_curl_setopt_header(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, f);
}
static inline CURLcode tsuku_curl_setopt_read(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
  return curl_easy_setopt(h, CURLOPT_READFUNCTION, f);
}
static inline CURLcode tsuku_curl_setopt_xferinfo(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
  return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f);
}
static inline CURLcode tsuku_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode tsuku_curl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode tsuku_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }

/* curl_multi_setopt is variadic too. */
static inline CURLMcode tsuku_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/* Constants that are macros of a type Swift does not import as a plain number. */
static const long tsuku_curl_global_default = CURL_GLOBAL_DEFAULT;
static const long tsuku_curlpipe_multiplex = CURLPIPE_MULTIPLEX;
static const int tsuku_curl_error_size = CURL_ERROR_SIZE;
#endif
