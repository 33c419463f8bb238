/* ens-verbs.h — the core verbs a request can name in "action" (ens-verbs.c).
 *
 * A registry: each part of the daemon adds its own verbs (agents.*, kv.*,
 * complete, sessions.*, ...), so whoever runs a request needs to know none
 * of them.  Also the parameter readers every verb shares. */
#pragma once

#include "ens-clients.h"

G_BEGIN_DECLS

typedef struct _EnsVerbs EnsVerbs;

/* One request to a verb, from a client or (client NULL) a plugin. */
typedef struct {
  EnsClient *client;
  EnsPlugin *plugin;
  EnsMessage *msg;
  JsonObject *params; /* msg->data when it is an object, else NULL */
  /* A verb added with ens_verbs_add_text, called with an object that is
   * still the text it came as: that text (params is then NULL). */
  const char *params_text;
  gsize params_text_len;
  /* Set by a verb: run once its answer was delivered to the client (a
   * client's request only). */
  void (*answered) (gpointer data);
  gpointer answered_data;
} EnsCall;

/* Answers @call: (transfer full) a REPLY or ERROR for call->msg. */
typedef EnsMessage *(*EnsVerbFunc) (EnsCall *call, gpointer data);

EnsVerbs *ens_verbs_new (void);
void ens_verbs_free (EnsVerbs *verbs);
/* @action is (transfer none) and must stay valid (a literal); @data is the
 * verb's, borrowed for the registry's life.  Listed in the order added. */
void ens_verbs_add (EnsVerbs *verbs, const char *action, EnsVerbFunc func, gpointer data);
/* The same for a verb that reads its parameters from their text when they
 * came as text (EnsCall.params_text), so they are not parsed for it. */
void ens_verbs_add_text (EnsVerbs *verbs, const char *action, EnsVerbFunc func, gpointer data);
/* (transfer full) the answer to call->msg: its verb's, or UNKNOWN_ACTION
 * naming every verb, or INVALID_PARAMETERS when data is not an object. */
EnsMessage *ens_verbs_run (EnsVerbs *verbs, EnsCall *call);

/* ---- reading parameters ---- */

/* A string parameter: TRUE and *out set (NULL when optional and absent), or
 * FALSE when present with the wrong type or empty, or required and missing. */
gboolean ens_call_string (EnsCall *call, const char *field, gboolean required, const char **out);
/* A list of non-empty strings, or one string taken as a list of one;
 * (transfer container) *out. */
gboolean ens_call_strv (EnsCall *call, const char *field, GPtrArray **out);
/* A name of 1-64 characters from [A-Za-z0-9._-], not starting with '.'
 * (agents). */
gboolean ens_name_valid (const char *name);
/* (transfer full) INVALID_PARAMETERS: "@field must be @expected". */
EnsMessage *ens_call_invalid (EnsCall *call, const char *field, const char *expected);
/* (transfer full) an error with @code and @message, no details. */
EnsMessage *ens_call_error (EnsCall *call, const char *code, const char *message);
/* TRUE when the caller is a connection with ENS_CLIENT_FLAG_ADMIN. */
gboolean ens_call_is_admin (EnsCall *call);

G_END_DECLS
