/* ens-fuzz.h — what the fuzz targets share (tests/fuzz/ens-fuzz-support.c).
 *
 * Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with clang and -Dfuzzing=true it is a
 * libFuzzer binary; otherwise it is linked with ens-fuzz-replay.c, which runs
 * it over the files and folders named on its command line (the seed corpus),
 * so every build replays the corpus as a regression test. */
#pragma once

#include "ens-glob.h"
#include "ens-host-private.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed);
/* libFuzzer's own byte mutator (the replay driver has a stand-in). */
size_t LLVMFuzzerMutate (uint8_t *data, size_t size, size_t max_size);

/* Once per process: GLib criticals and warnings abort (a critical is a bug
 * the fuzzer found; with ENS_FUZZ_SURVEY set they are reported and the run
 * goes on), and the daemon's own log lines are dropped. */
void ens_fuzz_init (void);

/* Aborts with @what and the input's first bytes, escaped, when @ok is FALSE. */
#define ENS_FUZZ_CHECK(ok, ...) \
  G_STMT_START { if (G_UNLIKELY (!(ok))) ens_fuzz_fail (__FILE__, __LINE__, __VA_ARGS__); } G_STMT_END
G_NORETURN void ens_fuzz_fail (const char *file, int line, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* Same tree: node types, value types and values, member order.  With
 * @numeric, an int and a double holding the same number are equal (the
 * writer prints 1.0 as 1). */
gboolean ens_fuzz_same_tree (JsonNode *a, JsonNode *b, gboolean numeric);

/* Checks that @bytes (what an encoder wrote) is one JSON text per line, each
 * accepted by the core's parser; returns the number of lines. */
guint ens_fuzz_check_lines (GBytes *bytes);

/* A mutator for inputs that end in a JSON text (from byte @offset on): half
 * the time, when that text parses, one node of its tree is replaced by a
 * value of another type (or another node of the tree, or wrapped, or a
 * member dropped) and the tree written back; otherwise libFuzzer's byte
 * mutations.  Type confusion is what the code that reads JSON trips on, and
 * byte mutations rarely keep a text valid JSON. */
size_t ens_fuzz_mutate_json (uint8_t *data, size_t size, size_t max_size, unsigned int seed, size_t offset);

/* The core's own host table (messages, JSON, encoders, node id
 * "fuzz-node"); clients are handles that are never dereferenced,
 * client_submit records what it is handed; the entries that need a running
 * daemon crash. */
const EnsHost *ens_fuzz_host (void);
/* (transfer full) the messages submitted since the last call, in order. */
GPtrArray *ens_fuzz_take_submitted (void);

G_END_DECLS
