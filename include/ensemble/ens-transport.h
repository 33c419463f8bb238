/* ens-transport.h — the contract between a transport and the host.
 *
 * A transport (kind ENS_PLUGIN_KIND_TRANSPORT, no vtable) carries bytes
 * between its peers and the host; everything it needs is in the host table
 * (ens-host.h).  This header holds no code: it says what the host promises
 * and what it expects, so that a transport can be written from the headers
 * alone.  tests/fixtures/transport/transport-line.c is a complete example.
 *
 * Connections
 *   host->client_new() registers one connection with an EnsClientSink; the
 *   transport calls host->client_close() exactly once when the connection
 *   is gone (peer closed, error, or after sink->disconnect()).  Nothing is
 *   delivered to the sink after client_close().  ENS_CLIENT_FLAG_ADMIN
 *   marks a connection allowed admin verbs such as "shutdown".
 *
 * What goes in
 *   For the native protocol, one JSON text per message (a line, a frame, a
 *   body): host->parse_native() turns it into a message, never NULL, and
 *   host->client_submit() hands it to the host.  A dialect of its own may
 *   build messages with host->message_new() instead (kind REQUEST; an
 *   agent's answer is a REPLY or ERROR whose id is the id of the request it
 *   answers).
 *
 * What comes back: exactly one answer per request
 *   - A REQUEST gets exactly one REPLY or ERROR through sink->deliver(),
 *     carrying the request's id and tag: maybe before client_submit()
 *     returns (core verbs), maybe much later (an agent's answer, a
 *     timeout), never after client_close().
 *   - A bounce (host->message_is_bounce() is TRUE: parse_native() made an
 *     ERROR of malformed input) gets exactly one answer, the bounce itself,
 *     delivered before client_submit() returns.
 *   - An agent's answer (a REPLY or ERROR from {"reply_to": ...}, not a
 *     bounce) gets no answer when a request was waiting for it.  When none
 *     was (answered already, timed out, never sent), one ERROR
 *     UNKNOWN_REQUEST comes back, before client_submit() returns.
 *   So a transport that must know when every answer is in (to close a
 *   half-closed connection after the last one, or to answer an HTTP call)
 *   counts one for each REQUEST and each bounce it submits, and one less
 *   for each REPLY or ERROR delivered; an UNKNOWN_REQUEST for an agent's
 *   answer arrives inside the client_submit() call that caused it.
 *   Events (kind EVENT) come through the same deliver() at any time, for
 *   the connection's subscriptions and targeted at it; they answer nothing.
 *
 * Writing
 *   host->message_encode (msg, encoder) caches the bytes per message and
 *   encoder: an event fanned out to many connections is encoded once.
 *   host->encode_native is the native encoder (one JSON line ending in
 *   '\n').  Transports queue what they cannot write at once; replies must
 *   not be dropped, events may be (oldest first), and the peer is told.
 *
 * Threads
 *   Everything happens on the main loop: the sink is called there, and the
 *   transport calls the host only from there.
 */
#pragma once

#include <ensemble/ens-host.h>
