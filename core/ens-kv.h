/* ens-kv.h — per-agent key/value state: the kv.set, kv.get, kv.delete and
 * kv.list verbs over the state store, scope "agent:<name>" (ens-kv.c); a
 * change is told on ensemble.kv.<agent> (what MCP resource subscriptions
 * follow). */
#pragma once

#include "ens-events.h"
#include "ens-state.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

/* What the verbs use, both (transfer none). */
typedef struct {
  EnsState *state;
  EnsEvents *events; /* kv.set and kv.delete publish ensemble.kv.<agent> {agent, key, op} */
} EnsKv;

/* @kv must outlive @verbs. */
void ens_kv_add_verbs (EnsVerbs *verbs, EnsKv *kv);

G_END_DECLS
