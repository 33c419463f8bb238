/* ens-kv.h — per-agent key/value state: the kv.set, kv.get, kv.delete and
 * kv.list verbs over the state store, scope "agent:<name>" (ens-kv.c). */
#pragma once

#include "ens-state.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

/* @state (transfer none) must outlive @verbs. */
void ens_kv_add_verbs (EnsVerbs *verbs, EnsState *state);

G_END_DECLS
