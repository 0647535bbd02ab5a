/* The one-connection mode of the HTTP layer (see cr_http_stream in http.h):
 * a thread drives a curl multi handle that multiplexes every request of a
 * context over one connection to a unix socket.  Internal to http.c. */
#ifndef CRESTIC_BACKENDS_HTTP_MUX_H
#define CRESTIC_BACKENDS_HTTP_MUX_H

#include <curl/curl.h>
#include <stdbool.h>

#include "backends/http.h"

typedef struct cr_http_mux cr_http_mux;

int cr_http_mux_new(const cr_http_stream *stream, cr_http_mux **out);
/* Stops the thread, closes the connection, frees. */
void cr_http_mux_free(cr_http_mux *m);
/* Options an easy handle needs to use the stream (after curl_easy_reset). */
void cr_http_mux_setup(cr_http_mux *m, CURL *c);
/* Run one transfer on the stream; blocks until it is done. */
CURLcode cr_http_mux_perform(cr_http_mux *m, CURL *c);
/* Was the stream closed?  Then no request can succeed any more. */
bool cr_http_mux_closed(cr_http_mux *m);
/* The error for a closed stream (from the caller's closed() hook). */
int cr_http_mux_closed_error(cr_http_mux *m);

#endif
