// A real @elizaos/server 1.7.2 for the end-to-end tests: PGlite in a temp dir, 127.0.0.1 only,
// one agent whose models are canned (no LLM, no network). Markers in a message steer its models
// the way real conversations steer an LLM, so the server ends (or never ends) runs as it does:
//
//   FAIL_MODEL       the text models throw: a model outage (RUN_ENDED completed + data.error)
//   PLEASE_MUTE      the reply picks bootstrap's MUTE_ROOM action and the mute check says YES:
//                    later messages in that room end `muted` (the list still shows `started`)
//   HOLD_MODEL-<id>  the first model call carrying this id waits until a later call carries it
//                    too (the next message in the room): the held reply is then superseded by the
//                    newer message, and ElizaOS discards it without ever ending its run
//
// A prompt holds the room's recent messages, so a marker goes on acting on later messages there.
//
// Usage: ELIZA_SERVER_AUTH_TOKEN=... node server.mjs <port> <dataDir>
// Prints "READY <agentId>" once the server listens and the agent runs.
import { AgentServer } from "@elizaos/server";
import { ModelType } from "@elizaos/core";
import sqlPlugin from "@elizaos/plugin-sql";
import bootstrapPlugin from "@elizaos/plugin-bootstrap";

const [port, dataDir] = process.argv.slice(2);
process.env.SERVER_HOST = "127.0.0.1";

const reply = (text, action = "REPLY") =>
  `<response><thought>canned</thought><actions>${action}</actions><providers></providers>` +
  `<text>${text}</text></response>`;

const held = new Map(); // HOLD_MODEL id -> release of the call it holds (null once released)

async function holdOrRelease(prompt) {
  for (const [id] of prompt.matchAll(/HOLD_MODEL-[\w-]+/g)) {
    if (!held.has(id)) {
      await new Promise((release) => held.set(id, release));
      return;
    }
    held.get(id)?.();
    held.set(id, null);
  }
}

function textModel(answer) {
  return async (_runtime, params) => {
    const prompt = String(params?.prompt ?? "");
    if (prompt.includes("FAIL_MODEL")) {
      throw new Error("canned model failure");
    }
    if (prompt.includes("should mute this room")) {
      return "YES";
    }
    await holdOrRelease(prompt);
    return reply(answer, prompt.includes("PLEASE_MUTE") ? "MUTE_ROOM" : "REPLY");
  };
}

const cannedModels = {
  name: "canned-models",
  description: "Offline model handlers with canned answers for the exporter's tests",
  priority: 100,
  models: {
    [ModelType.TEXT_SMALL]: textModel("ok"),
    [ModelType.TEXT_LARGE]: textModel("Here is a canned answer."),
    [ModelType.TEXT_EMBEDDING]: async () => Array.from({ length: 384 }, (_, i) => (i % 7) / 7),
  },
};

const character = {
  name: "Canned",
  bio: ["An agent that answers with canned replies, for tests."],
  settings: { secrets: {} },
};

const server = new AgentServer();
await server.start({
  port: Number(port),
  dataDir,
  agents: [{ character, plugins: [sqlPlugin, bootstrapPlugin, cannedModels] }],
});
console.log(`READY ${server.getAllAgents()[0].agentId}`);
