// The live page: a form made from each task's JSON Schema, and this browser's tasks,
// followed live (EventSource through the client's watch), with progress, results, files.
import { Taskd, isTerminal } from "/v1/client.js";

const $ = (id) => document.getElementById(id);
const RECENT = "taskd.recent";
const KEY = "taskd.apiKey";
const IMAGE = /\.(jpe?g|png|gif|webp)$/i;
let catalog = [];
const rows = new Map();

function client() {
  return new Taskd("", { apiKey: $("api-key").value.trim() });
}

function recent() {
  try { return JSON.parse(localStorage.getItem(RECENT) || "[]"); } catch { return []; }
}

function remember(key, name) {
  const list = recent().filter((t) => t.key !== key);
  list.unshift({ key, name });
  localStorage.setItem(RECENT, JSON.stringify(list.slice(0, 50)));
}

// -- the form ------------------------------------------------------------------------------

function resolve(schema, root) {
  if (schema && schema.$ref) return resolve(root.$defs[schema.$ref.split("/").pop()], root);
  if (schema && schema.anyOf) {
    const options = schema.anyOf.map((s) => resolve(s, root)).filter((s) => s.type !== "null");
    // Several shapes, text among them (an argv list or a shell string): text, JSON if it is.
    if (options.length > 1 && options.some((s) => s.type === "string")) {
      return { ...schema, anyOf: undefined, type: "string", loose: true };
    }
    return { ...options[0], ...schema, anyOf: undefined };
  }
  return schema || {};
}

function field(name, schema, required) {
  const wrap = document.createElement("label");
  wrap.className = "field";
  wrap.textContent = name + (required ? " *" : "");
  let input;
  if (schema.enum) {
    input = document.createElement("select");
    for (const value of schema.enum) input.add(new Option(String(value), JSON.stringify(value)));
    input.dataset.kind = "json";
  } else if (schema.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = schema.default === true;
    input.dataset.kind = "boolean";
  } else if (schema.type === "number" || schema.type === "integer") {
    input = document.createElement("input");
    input.type = "number";
    input.step = schema.type === "integer" ? "1" : "any";
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    input.dataset.kind = "number";
  } else if (schema.type === "array" || schema.type === "object") {
    input = document.createElement("textarea");
    input.rows = 2;
    input.placeholder = "JSON";
    input.dataset.kind = "json";
  } else if ((schema.maxLength || 0) > 1000) {
    input = document.createElement("textarea");  // a script, say
    input.rows = 5;
    input.dataset.kind = "string";
  } else {
    input = document.createElement("input");
    input.dataset.kind = schema.loose ? "loose" : "string";
    if (schema.loose) input.placeholder = 'text, or JSON such as ["ls", "-l"]';
  }
  input.name = name;
  if (schema.default !== undefined && schema.default !== null && input.type !== "checkbox") {
    input.value = typeof schema.default === "string" ? schema.default : JSON.stringify(schema.default);
    if (input.dataset.kind === "number") input.value = schema.default;
  }
  input.required = required && input.type !== "checkbox";
  wrap.append(input);
  if (schema.description) {
    const hint = document.createElement("small");
    hint.textContent = schema.description;
    wrap.append(hint);
  }
  return wrap;
}

function showForm() {
  const task = catalog.find((t) => t.name === $("task-name").value);
  $("task-description").textContent = task ? task.description : "";
  const fields = $("fields");
  fields.replaceChildren();
  if (!task) return;
  const schema = task.parameters;
  const required = new Set(schema.required || []);
  for (const [name, property] of Object.entries(schema.properties || {})) {
    fields.append(field(name, resolve(property, schema), required.has(name)));
  }
}

function definition() {
  const result = { task_name: $("task-name").value };
  for (const input of $("fields").querySelectorAll("input, select, textarea")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") { if (input.checked) result[input.name] = true; continue; }
    if (input.value === "") continue;
    if (kind === "number") result[input.name] = Number(input.value);
    else if (kind === "json") result[input.name] = JSON.parse(input.value);
    else if (kind === "loose" && /^\s*[[{"]/.test(input.value)) result[input.name] = JSON.parse(input.value);
    else result[input.name] = input.value;
  }
  return result;
}

// -- the tasks -----------------------------------------------------------------------------

function row(key, name) {
  if (rows.has(key)) return rows.get(key);
  const item = document.createElement("li");
  item.className = "task";
  item.dataset.key = key;
  item.innerHTML = `<div class="head"><span class="name"></span><span class="state"></span>
    <span class="key"></span><button class="cancel" type="button">Cancel</button></div>
    <progress max="100"></progress><div class="label"></div>
    <pre class="result" hidden></pre><div class="files"></div>`;
  item.querySelector(".name").textContent = name || "";
  item.querySelector(".key").textContent = key;
  item.querySelector(".cancel").addEventListener("click", async () => {
    try { await client().cancel([key]); } catch (error) { $("form-error").textContent = error.message; }
  });
  $("tasks").prepend(item);
  rows.set(key, item);
  return item;
}

function show(status) {
  const item = row(status.key);
  const state = item.querySelector(".state");
  state.textContent = status.status;
  state.className = `state ${status.status}`;
  item.dataset.status = status.status;
  const bar = item.querySelector("progress");
  const label = item.querySelector(".label");
  const progress = status.progress;
  if (typeof progress === "number") {
    bar.value = progress;
    label.textContent = `${progress}%`;
  } else if (progress !== undefined) {
    label.textContent = String(progress);  // a Slurm state, or any other value
  }
  if (status.status === "success" && typeof progress !== "number") bar.value = 100;
  if (isTerminal(status)) {
    item.querySelector(".cancel").hidden = true;
    const result = item.querySelector(".result");
    result.hidden = false;
    result.textContent = JSON.stringify(status.result, null, 2);
    const files = item.querySelector(".files");
    files.replaceChildren();
    for (const name of status.files || []) {
      const url = client().fileUrl(status.key, name);
      if (IMAGE.test(name)) {
        const image = document.createElement("img");
        image.src = url;
        image.alt = name;
        files.append(image);
      } else {
        const link = document.createElement("a");
        link.href = url;
        link.textContent = name;
        files.append(link);
      }
    }
  }
}

// The keys the server still knows (a 404 names each unknown one).
async function known(keys) {
  if (!keys.length) return new Set();
  try {
    await client().status(keys);
    return new Set(keys);
  } catch (error) {
    if (error.status !== 404) return new Set();
    const gone = new Set(error.errors.map((e) => e.description.split(": ").pop()));
    return new Set(keys.filter((k) => !gone.has(k)));
  }
}

function follow(keys) {
  if (keys.length) client().watch(keys, show);
}

async function submit(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  localStorage.setItem(KEY, $("api-key").value.trim());
  let task;
  try {
    task = definition();
  } catch (error) {
    $("form-error").textContent = `not JSON: ${error.message}`;
    return;
  }
  try {
    for await (const status of client().createStream(task)) {
      if (!rows.has(status.key)) {
        remember(status.key, task.task_name);
        row(status.key, task.task_name);
      }
      show(status);
    }
  } catch (error) {
    $("form-error").textContent = error.message;
  }
}

async function start() {
  $("api-key").value = localStorage.getItem(KEY) || "";
  catalog = await client().catalog();
  for (const task of catalog) $("task-name").add(new Option(task.name, task.name));
  $("task-name").addEventListener("change", showForm);
  $("task-form").addEventListener("submit", submit);
  showForm();
  // This browser's earlier tasks, followed again; expired ones leave the list.
  const earlier = recent();
  const alive = await known(earlier.map((t) => t.key));
  const kept = earlier.filter((t) => alive.has(t.key));
  localStorage.setItem(RECENT, JSON.stringify(kept));
  for (const { key, name } of [...kept].reverse()) row(key, name);
  follow([...alive]);
  document.body.dataset.ready = "true";
}

start();
