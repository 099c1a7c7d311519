// A real @elizaos/server 1.7.2 for the end-to-end tests: PGlite in a temp dir, 127.0.0.1 only,
// one agent whose models are canned (no LLM, no network). A prompt that contains FAIL_MODEL makes
// the text models throw, which is how a real model outage reaches ElizaOS.
//
// Usage: ELIZA_SERVER_AUTH_TOKEN=... node server.mjs <port> <dataDir>
// Prints "READY <agentId>" once the server listens and the agent runs.
import { AgentServer } from "@elizaos/server";
import { ModelType } from "@elizaos/core";
import sqlPlugin from "@elizaos/plugin-sql";
import bootstrapPlugin from "@elizaos/plugin-bootstrap";

const [port, dataDir] = process.argv.slice(2);
process.env.SERVER_HOST = "127.0.0.1";

const reply = (text) =>
  "<response><thought>canned</thought><actions>REPLY</actions><providers></providers>" +
  `<text>${text}</text></response>`;

function textModel(answer) {
  return async (_runtime, params) => {
    if (String(params?.prompt ?? "").includes("FAIL_MODEL")) {
      throw new Error("canned model failure");
    }
    return reply(answer);
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
