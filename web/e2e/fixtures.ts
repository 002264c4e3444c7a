// Fixtures of the top bar spec and the screenshots: a minimal OpenAI-compatible provider
// (/v1/models and a streamed /v1/chat/completions that sends `reply` in small pieces, `delayMs`
// apart; e2e/admin-ai.spec.ts has the full stub, with images and failures) and an administrator
// made with the CLI.

import { spawn } from "node:child_process";
import { type Server as HttpServer, createServer } from "node:http";
import { join, resolve } from "node:path";
import { PASSWORD, type Server } from "./harness";

export const STUB_KEY = "stub-key-7f3a";

export interface AiStub {
  /** The provider's base URL, for SC_AI_BASE_URL. */
  base: string;
  close(): Promise<void>;
}

export function startAiStub(reply: string, delayMs = 40): Promise<AiStub> {
  const srv: HttpServer = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${STUB_KEY}`) return json(401, { error: { message: "bad key" } });
    if (req.method === "GET" && req.url === "/v1/models") return json(200, { object: "list", data: [{ id: "stub-chat", object: "model" }] });
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return json(404, { error: { message: "no route" } });
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString("utf8")));
    req.on("end", async () => {
      const body = JSON.parse(raw || "{}") as { stream?: boolean; model?: string };
      if (!body.stream) {
        return json(200, {
          id: "c1",
          object: "chat.completion",
          created: 1,
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id: "c2", object: "chat.completion.chunk", created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: "assistant", content: "" }, null));
      for (const piece of reply.match(/.{1,6}/gs) ?? []) {
        await new Promise((r) => setTimeout(r, delayMs));
        if (res.destroyed) return;
        res.write(chunk({ content: piece }, null));
      }
      res.write(chunk({}, "stop"));
      res.write("data: [DONE]\n\n");
      res.end();
    });
  });
  return new Promise((ok) => {
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      ok({
        base: `http://127.0.0.1:${port}/v1`,
        close: () =>
          new Promise<void>((c) => {
            srv.closeAllConnections();
            srv.close(() => c());
          }),
      });
    });
  });
}

/** The server's environment for this stub. */
export function aiEnv(stub: AiStub): Record<string, string> {
  return { SC_AI_BASE_URL: stub.base, SC_AI_API_KEY: STUB_KEY, SC_AI_MODEL: "stub-chat" };
}

/** `secureconnect admin create-user … --admin` against the running server's data directory. */
export function createAdmin(server: Server, username: string, displayName: string): Promise<void> {
  const bin = resolve(process.env.SC_BIN ?? join(new URL(".", import.meta.url).pathname, "../../target/debug/secureconnect"));
  const args = ["admin", "create-user", "--email", `${username}@example.org`, "--username", username, "--display-name", displayName, "--admin"];
  return new Promise((ok, fail) => {
    const child = spawn(bin, args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SC_DATA_DIR: server.dataDir },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("exit", (code) => (code === 0 ? ok() : fail(new Error(`create-user exited ${code}: ${out}`))));
    child.stdin.end(`${PASSWORD}\n`);
  });
}
