/* ens-sse-reader.h — a server-sent events reader on bytes.
 *
 * No I/O: feed it the bytes of a text/event-stream body as they arrive, in
 * pieces of any size, and it calls back once per event.  Lines end with
 * CRLF, LF or CR (also when a CRLF is split between two pieces); "data:"
 * lines of one event are joined with '\n'; "event:" names it; comments
 * (":...") and other fields are skipped; a leading byte order mark is
 * dropped.  A line longer than the reader's cap is an error
 * (ENS_UPSTREAM_ERROR_LIMIT), so a hostile stream cannot grow it without
 * bound.  Fuzz targets drive it directly. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EnsSseReader EnsSseReader;

/* One event: @event (transfer none) is NULL when the event had no "event:"
 * line (OpenAI sends none); @data (transfer none) is NUL-terminated, @len
 * bytes long.  Both are valid during the call only.  Return FALSE to stop:
 * the reader then reads nothing more. */
typedef gboolean (*EnsSseEventFunc) (const char *event, const char *data, gsize len, gpointer user_data);

/* (transfer full) a reader calling @func for each event; lines longer than
 * @max_line bytes (without their line end) are refused. */
EnsSseReader *ens_sse_reader_new (gsize max_line, EnsSseEventFunc func, gpointer user_data);
void ens_sse_reader_free (EnsSseReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsSseReader, ens_sse_reader_free)

/* Reads @len bytes of @bytes (transfer none; need not be NUL-terminated).
 * TRUE when all were read; FALSE with @error set for a line over the cap;
 * FALSE without error once the callback has asked to stop. */
gboolean ens_sse_reader_feed (EnsSseReader *reader, const char *bytes, gsize len, GError **error);

/* The end of the stream: a last line without its line end still counts,
 * and an event without its blank line is still delivered.  Returns as
 * ens_sse_reader_feed. */
gboolean ens_sse_reader_finish (EnsSseReader *reader, GError **error);

G_END_DECLS
