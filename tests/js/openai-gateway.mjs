// openai-gateway.mjs — the official `openai` npm client, unchanged, against
// ensembled's gateway in front of real upstreams (fakes on loopback): chat,
// stream (with usage), tools, embeddings (the client's default base64 and
// float), and every error a caller must be able to tell apart: 401, 404,
// 422, 429, 5xx, and a stream that breaks after its first chunk.  Prints
// what it saw as one JSON object for tests/integration/test_gateway_openai.py.
//
//   node openai-gateway.mjs BASE_URL API_KEY
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
if (!baseURL || !apiKey) {
  console.error("usage: node openai-gateway.mjs BASE_URL API_KEY");
  process.exit(2);
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const stranger = new OpenAI({ baseURL, apiKey: "not-the-token", maxRetries: 0, timeout: 20000 });

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
      requestID: err.request_id ?? null,
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

const user = (content) => [{ role: "user", content }];

async function chat(model) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: user("hello gateway") })
    .withResponse();
  return {
    model: data.model,
    content: data.choices[0].message.content,
    finish_reason: data.choices[0].finish_reason,
    usage: data.usage,
    requestID: response.headers.get("x-request-id"),
  };
}

async function stream(model) {
  const s = await client.chat.completions.create({
    model,
    messages: user("stream to me"),
    stream: true,
    stream_options: { include_usage: true },
  });
  const out = { content: "", models: new Set(), finish_reasons: [], usage: null, chunks: 0 };
  for await (const chunk of s) {
    out.chunks++;
    out.models.add(chunk.model);
    if (chunk.usage) out.usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    if (chunk.choices[0].delta.content) out.content += chunk.choices[0].delta.content;
    if (chunk.choices[0].finish_reason) out.finish_reasons.push(chunk.choices[0].finish_reason);
  }
  return { ...out, models: [...out.models] };
}

// A stream that breaks mid-way: what the caller holds when the error comes.
async function brokenStream(model) {
  const s = await client.chat.completions.create({ model, messages: user("break"), stream: true });
  let content = "";
  try {
    for await (const chunk of s) {
      if (chunk.choices.length && chunk.choices[0].delta.content) content += chunk.choices[0].delta.content;
    }
  } catch (err) {
    return { threw: true, content, error: describeError(err) };
  }
  return { threw: false, content };
}

async function tools(model) {
  const r = await client.chat.completions.create({
    model,
    messages: user("look it up"),
    tools: [{ type: "function", function: { name: "lookup", description: "find", parameters: { type: "object" } } }],
  });
  const m = r.choices[0].message;
  // the next turn sends the assistant's tool call back with content null
  const r2 = await client.chat.completions.create({
    model,
    messages: [...user("look it up"), { role: "assistant", content: m.content, tool_calls: m.tool_calls },
               { role: "tool", tool_call_id: m.tool_calls[0].id, content: "found it" }],
  });
  return { content: m.content, tool_calls: m.tool_calls, finish_reason: r.choices[0].finish_reason,
           next: r2.choices[0].message.content };
}

async function embeddings(model, encoding_format) {
  const params = { model, input: ["a cat on a mat", "tax law"] };
  if (encoding_format) params.encoding_format = encoding_format;
  const r = await client.embeddings.create(params);
  return {
    object: r.object,
    model: r.model,
    usage: r.usage,
    data: r.data.map((d) => ({ object: d.object, index: d.index, embedding: Array.from(d.embedding) })),
  };
}

async function main() {
  const [chatModel, streamModel, toolsModel, embedModel, cutModel, limitedModel, brokenModel] =
    ["gw-chat", "gw-chat", "gw-tools", "gw-embed", "gw-cut", "gw-limited", "gw-broken"];
  const r = {};
  r.chat = await attempt(() => chat(chatModel));
  r.stream = await attempt(() => stream(streamModel));
  r.tools = await attempt(() => tools(toolsModel));
  r.embeddings_default = await attempt(() => embeddings(embedModel));
  r.embeddings_float = await attempt(() => embeddings(embedModel, "float"));
  r.error_401 = await attempt(() => stranger.chat.completions.create({ model: chatModel, messages: user("x") }));
  r.error_404 = await attempt(() => client.chat.completions.create({ model: "no-such-model", messages: user("x") }));
  r.error_404_embeddings = await attempt(() => client.embeddings.create({ model: "no-such-model", input: "x" }));
  r.error_422 = await attempt(() => client.embeddings.create({ model: chatModel, input: "x" }));
  r.error_400 = await attempt(() => client.embeddings.create({ model: embedModel, input: "" }));
  r.error_429 = await attempt(() => client.chat.completions.create({ model: limitedModel, messages: user("x") }));
  r.error_5xx = await attempt(() => client.chat.completions.create({ model: brokenModel, messages: user("x") }));
  r.broken_stream = await attempt(() => brokenStream(cutModel));
  process.stdout.write(JSON.stringify(r) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
