// taskd's JavaScript client: one dependency-free ES module, served at /v1/client.js.
//
//   import { Taskd } from "/v1/client.js";
//   const taskd = new Taskd("", { apiKey: "demo-key" });      // "" = this page's server
//   const [status] = await taskd.create({ task_name: "hello", name: "you" }, { block: true });
//   for await (const s of taskd.createStream({ task_name: "sleep", seconds: 2 })) show(s);
//   const watching = taskd.watch([key], show, { onEnd: done }); // EventSource, reconnecting
//
// Nothing polls: every change is pushed by the server (NDJSON or Server-Sent Events).

export class TaskdError extends Error {
  constructor(status, body) {
    const described = body && (body.message ||
      (body.errors || []).map((e) => `${e.name}: ${e.description}`).join("; "));
    super(`HTTP ${status}: ${described || JSON.stringify(body)}`);
    this.status = status;
    this.serverMessage = body && body.message;
    this.errors = (body && body.errors) || [];
  }
}

const TERMINAL = new Set(["success", "error"]);

export class Taskd {
  // url: the server ("" for the page's own); apiKey with a whitelisted origin, or secret.
  constructor(url = "", { apiKey, secret } = {}) {
    this.url = url.replace(/\/$/, "");
    this.headers = {};
    if (apiKey) this.headers.Authorization = `Api-Key ${apiKey}`;
    else if (secret) this.headers.Authorization = `Secret ${secret}`;
  }

  async request(path, body, method = body === undefined ? "GET" : "POST") {
    const init = { method, headers: { ...this.headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(this.url + path, init);
    if (!response.ok) {
      let parsed;
      try { parsed = await response.json(); } catch { parsed = await response.text(); }
      throw new TaskdError(response.status, parsed);
    }
    return response;
  }

  async json(path, body) {
    return (await this.request(path, body)).json();
  }

  // Create one task or a list; their statuses (finished ones with block: true).
  create(tasks, { block = false } = {}) {
    return this.json("/v1/create", { tasks, block });
  }

  // Create and follow: an async iterator of statuses (the first ones, then each change);
  // with { onStatus } the statuses go to the callback and the promise ends with the stream.
  createStream(tasks, { onStatus } = {}) {
    const stream = this.lines("/v1/create_stream", { tasks });
    return onStatus ? each(stream, onStatus) : stream;
  }

  statusStream(keys, { onStatus } = {}) {
    const stream = this.lines("/v1/status_stream", { tasks: [].concat(keys) });
    return onStatus ? each(stream, onStatus) : stream;
  }

  status(keys) {
    return this.json("/v1/status", { tasks: [].concat(keys) });
  }

  cancel(keys) {
    return this.json("/v1/cancel", { tasks: [].concat(keys) });
  }

  async catalog() {
    return (await this.json("/v1/tasks")).tasks;
  }

  // The URL that redirects to a task's output file (an <img src>, a download link).
  fileUrl(key, filename) {
    const name = filename ? `/${encodeURIComponent(filename)}` : "";
    return `${this.url}/v1/file${name}?task=${encodeURIComponent(key)}`;
  }

  // NDJSON through fetch and a ReadableStream: line 1 (a list) is split into its statuses.
  async *lines(path, body) {
    const response = await this.request(path, body);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let first = true;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end).trim();
          buffer = buffer.slice(end + 1);
          if (!line) continue;
          const parsed = JSON.parse(line);
          if (first && Array.isArray(parsed)) yield* parsed;
          else yield parsed;
          first = false;
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  // Follow tasks with an EventSource (reads need only the keys): onStatus(status) for each
  // status of the snapshot and each change, onEnd(statuses) once all have ended. After a
  // dropped connection the browser reconnects by itself and the server starts again from a
  // snapshot, so nothing is missed. Returns { close() }.
  watch(keys, onStatus, { onEnd, onError } = {}) {
    const query = [].concat(keys).map((k) => `tasks=${encodeURIComponent(k)}`).join("&");
    const source = new EventSource(`${this.url}/v1/status_stream?${query}`);
    const latest = new Map();
    const take = (status) => { latest.set(status.key, status); onStatus(status); };
    source.addEventListener("snapshot", (e) => JSON.parse(e.data).forEach(take));
    source.addEventListener("message", (e) => take(JSON.parse(e.data)));
    source.addEventListener("end", () => {
      source.close();
      if (onEnd) onEnd([...latest.values()]);
    });
    source.addEventListener("error", (e) => { if (onError) onError(e, source.readyState); });
    return { close: () => source.close(), source };
  }
}

export function isTerminal(status) {
  return TERMINAL.has(status.status);
}

async function each(stream, onStatus) {
  const latest = new Map();
  for await (const status of stream) {
    latest.set(status.key, status);
    onStatus(status);
  }
  return [...latest.values()];
}
