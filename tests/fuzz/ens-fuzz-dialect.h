/* ens-fuzz-dialect.h — what fuzz-ksi and fuzz-centerfire share
 * (ens-fuzz-dialect.c): one frame of a seed dialect (plugins/common/dialect)
 * decoded, and what the core answers, encoded back. */
#pragma once

#include "ens-fuzz.h"
#include "ens-dialect.h"

G_BEGIN_DECLS

/* Decodes @data as one frame of @dialect (on a socket serving @agent, may be
 * NULL) and checks it: exactly one outcome (bytes back, or one message for
 * the core, a request with its verb); what goes back is JSON lines; the
 * core's answers to the request (a success carrying the request's data, an
 * error) and an event for each of the dialect's event topics (anyone may
 * publish it, with this data) encode to JSON lines.  Returns 0. */
int ens_fuzz_dialect_run (const EnsDialect *dialect, const char *agent, const uint8_t *data, size_t size);

G_END_DECLS
