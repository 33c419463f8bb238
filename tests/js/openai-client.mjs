// openai-client.mjs — drives ensembled's OpenAI-compatible API with the
// official `openai` npm client, unchanged, and prints what it saw as one
// JSON object on stdout for tests/integration/test_http_openai.py to check.
//
//   node openai-client.mjs BASE_URL API_KEY [all|auth|model=NAME]
//
// BASE_URL is http://127.0.0.1:PORT/v1.  "all" runs every scenario; "auth"
// one completion and the model list (to see a token accepted or refused);
// "model=NAME" one plain completion with that model.
import OpenAI from "openai";

const [baseURL, apiKey = "unused", scenario = "all"] = process.argv.slice(2);
if (!baseURL) {
  console.error("usage: node openai-client.mjs BASE_URL [API_KEY] [all|auth|model=NAME]");
  process.exit(2);
}

// No retries: a refused request must show at once, not after backoff.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });

// What an APIError (or anything else thrown) looks like to a caller.
function describeError(err) {
  if (err instanceof OpenAI.APIError) {
    return {
      apiError: true,
      className: err.constructor.name,
      status: err.status ?? null,
      type: err.type ?? err.error?.type ?? null,
      code: err.code ?? null,
      param: err.param ?? null,
      message: err.message,
    };
  }
  return { apiError: false, className: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
}

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

async function plain(model = "auto", content = "Say hello to the OpenAI client") {
  const r = await client.chat.completions.create({
    model,
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content },
    ],
    max_tokens: 200,
    temperature: 0.2,
    user: "openai-client-test",
  });
  return {
    id: r.id,
    object: r.object,
    created: r.created,
    model: r.model,
    system_fingerprint: r.system_fingerprint,
    choices: r.choices.length,
    role: r.choices[0].message.role,
    content: r.choices[0].message.content,
    finish_reason: r.choices[0].finish_reason,
    usage: r.usage,
  };
}

async function stream(includeUsage) {
  const params = {
    model: "local",
    messages: [{ role: "user", content: "Stream a reply back to me please" }],
    stream: true,
  };
  if (includeUsage) params.stream_options = { include_usage: true };
  const s = await client.chat.completions.create(params);
  const out = { chunks: 0, content: "", ids: new Set(), objects: new Set(), roles: [], finish_reasons: [], usage: null,
                empty_choice_chunks: 0 };
  for await (const chunk of s) {
    out.chunks++;
    out.ids.add(chunk.id);
    out.objects.add(chunk.object);
    if (chunk.usage) out.usage = chunk.usage;
    if (chunk.choices.length === 0) {
      out.empty_choice_chunks++;
      continue;
    }
    const choice = chunk.choices[0];
    if (choice.delta.role) out.roles.push(choice.delta.role);
    if (choice.delta.content) out.content += choice.delta.content;
    if (choice.finish_reason) out.finish_reasons.push(choice.finish_reason);
  }
  return { ...out, ids: [...out.ids], objects: [...out.objects] };
}

async function models() {
  const list = await client.models.list();
  const data = [];
  for await (const m of list) data.push({ id: m.id, object: m.object, owned_by: m.owned_by, created: m.created });
  return data;
}

async function multipart() {
  const r = await client.chat.completions.create({
    model: "local",
    messages: [{ role: "user", content: [{ type: "text", text: "first part" }, { type: "text", text: "second part" }] }],
  });
  return r.choices[0].message.content;
}

async function main() {
  const results = {};
  if (scenario === "all") {
    results.plain = await attempt(() => plain("local"));
    results.plain_auto = await attempt(() => plain("auto"));
    results.stream = await attempt(() => stream(false));
    results.stream_usage = await attempt(() => stream(true));
    results.models = await attempt(models);
    results.multipart = await attempt(multipart);
    results.unknown_model = await attempt(() => plain("no-such-model"));
    results.empty_messages = await attempt(() => client.chat.completions.create({ model: "local", messages: [] }));
    results.bad_temperature = await attempt(() =>
      client.chat.completions.create({ model: "local", messages: [{ role: "user", content: "x" }], temperature: 9 }));
    results.two_choices = await attempt(() =>
      client.chat.completions.create({ model: "local", messages: [{ role: "user", content: "x" }], n: 2 }));
    results.unknown_model_stream = await attempt(async () => {
      const s = await client.chat.completions.create({
        model: "no-such-model", messages: [{ role: "user", content: "x" }], stream: true });
      const models = new Set();
      for await (const chunk of s) models.add(chunk.model);
      return [...models];
    });
  } else if (scenario === "auth") {
    results.plain = await attempt(() => plain("local"));
    results.models = await attempt(models);
  } else if (scenario.startsWith("model=")) {
    results.plain = await attempt(() => plain(scenario.slice(6), "Relay this through two daemons"));
  } else {
    console.error(`unknown scenario ${scenario}`);
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
