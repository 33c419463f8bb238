/* ens-message-private.h — what the core does with the one message model of
 * <ensemble/ens-message.h> beyond the plugin ABI (ens-message.c). */
#pragma once

#include <ensemble/ens-message.h>

G_BEGIN_DECLS

EnsMessage *ens_message_new (const EnsMessageInit *init);
/* ens_message_new() of an @init whose data_text the core's parser has
 * checked already (one JSON value). */
EnsMessage *ens_message_new_checked (const EnsMessageInit *init);
EnsMessage *ens_message_ref (EnsMessage *msg);
void ens_message_unref (EnsMessage *msg);
GBytes *ens_message_encode (EnsMessage *msg, EnsEncodeFunc encode);
GBytes *ens_message_encode_native (EnsMessage *msg);
EnsMessage *ens_message_parse_native (const char *text, gsize len);
/* ens_message_parse_native() of a text already parsed; @root (transfer none). */
EnsMessage *ens_message_from_native (JsonNode *root);
/* An error made by the parser from malformed input; submitted, it goes
 * straight back to its sender (host->message_is_bounce). */
gboolean ens_message_is_bounce (EnsMessage *msg);
/* An event from another node (publish_remote): taps never see it. */
void ens_message_set_remote (EnsMessage *msg);
gboolean ens_message_is_remote (EnsMessage *msg);
void ens_message_set_seq (EnsMessage *msg, guint64 seq);
/* Only before the message is shared: names the sender. */
void ens_message_set_from (EnsMessage *msg, const char *from);
gboolean ens_message_id_is_number (EnsMessage *msg);
/* host->message_data: (transfer none) the data, parsed from its text on
 * first use; NULL when none. */
JsonNode *ens_message_get_data (EnsMessage *msg);
/* host->message_data_text: (transfer none) the data as compact JSON text
 * ("null" when none), written from the tree once if it came as one. */
const char *ens_message_get_data_text (EnsMessage *msg, gsize *len);
/* Whether the data's text is there already (it came as text, or was
 * written once): encoders then copy it rather than write the tree. */
gboolean ens_message_has_data_text (EnsMessage *msg);
/* (transfer full) a REPLY / ERROR answering @request */
EnsMessage *ens_message_new_reply (EnsMessage *request, JsonNode *data);
/* The same with the data as JSON text the caller wrote (one value, no line
 * break), copied. */
EnsMessage *ens_message_new_reply_text (EnsMessage *request, const char *data_text, gsize len);
EnsMessage *ens_message_new_error (EnsMessage *request, const char *code, const char *message,
                                   JsonNode *details);
/* (transfer full) the INVALID_PARAMETERS error of every verb: "@field must
 * be @expected", details {field, expected}. */
EnsMessage *ens_message_new_invalid (EnsMessage *request, const char *field, const char *expected);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsMessage, ens_message_unref)

G_END_DECLS
