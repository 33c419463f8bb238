/* ens-upstream.h — the upstream HTTP library of the provider plugins
 * (provider-openai, provider-anthropic): everything in one include.
 *
 *   ens-upstream-backend.h   one configured backend and its connection pools
 *   ens-upstream-pool.h      keep-alive HTTP/1.1 connections to one host, exchanges on them
 *   ens-upstream-response.h  an HTTP/1.1 answer read on bytes
 *   ens-upstream-provider.h  a provider plugin instance: backends, running calls
 *   ens-upstream-call.h      one completion's request: retries, timeouts, reading
 *   ens-sse-reader.h         server-sent events on bytes
 *   ens-upstream-answer.h    what an answer collects, and the completion result
 *   ens-tool-calls.h         tool calls by index
 *   ens-upstream-openai.h    reading Chat Completions answers
 *   ens-upstream-openai-scan.h  ... their common shapes, without a tree
 *   ens-upstream-anthropic.h reading Messages answers
 *   ens-upstream-json.h      type-checked JSON reads, the error domain
 *
 * A static library: each plugin links its own copy, with hidden symbols,
 * so nothing here is part of the plugin ABI. */
#pragma once

#include "ens-sse-reader.h"
#include "ens-tool-calls.h"
#include "ens-upstream-anthropic.h"
#include "ens-upstream-answer.h"
#include "ens-upstream-backend.h"
#include "ens-upstream-call.h"
#include "ens-upstream-json.h"
#include "ens-upstream-openai.h"
#include "ens-upstream-openai-scan.h"
#include "ens-upstream-provider.h"
