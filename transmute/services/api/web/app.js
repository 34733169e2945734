// The transmute page: a form built from /api/formats/, a task followed over its event stream (or by polling its
// status where there is no stream), and the recent tasks. Plain DOM, no framework, nothing loaded from elsewhere.
"use strict";

const KEY_STORAGE = "transmute.apiKey";
const FINAL = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 500;
const $ = (id) => document.getElementById(id);

let formats = {};       // name -> the format as /api/formats/ describes it
let following = null;   // {id, source, timer} of the task shown in the task section
let listTimer = null;

// ------------------------------------------------------------------------------------------- API calls

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `The server answered ${status}.`);
    this.status = status;
    this.field = body && body.details && body.details.field;
  }
}

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function withKey(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, "X-API-Key": key } : headers;
}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: withKey(init.headers) });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const error = new ApiError(response.status, body);
    if (response.status === 401) askForKey(error.message);
    throw error;
  }
  return response;
}

async function json(path, init) {
  return (await api(path, init)).json();
}

// A URL the browser may load as is: the path itself, or (when a key is needed, which <img> and <a> cannot send)
// the file fetched with the key, as a blob URL.
async function fileUrl(path) {
  if (!apiKey()) return path;
  return URL.createObjectURL(await (await api(path)).blob());
}

function saveBlob(blob, filename) {
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

// ------------------------------------------------------------------------------------------- errors

function showError(error, fallback) {
  const near = error.status === 401 ? $("key-error")
    : (error.field && $(`error-${error.field}`)) || (["file", "url"].includes(error.field) && $("source-error"))
    || fallback;
  near.textContent = error.message;
  const input = error.field && document.querySelector(`[name="${CSS.escape(error.field)}"]`);
  if (input) input.setAttribute("aria-invalid", "true");
}

function clearErrors(root) {
  root.querySelectorAll(".error").forEach((node) => { node.textContent = ""; });
  root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

// ------------------------------------------------------------------------------------------- API key

function askForKey(message) {
  $("key-section").hidden = false;
  $("key-error").textContent = message;
  $("api-key").value = apiKey();
  $("api-key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
  $("key-error").textContent = "";
  start();
});

// ------------------------------------------------------------------------------------------- the form

function element(tag, properties = {}) {
  return Object.assign(document.createElement(tag), properties);
}

function asText(value) {
  return value === null || value === undefined ? "" : String(value);
}

// One input for one option, chosen by its type: checkbox, select, number or text.
function optionField(parameter) {
  const id = `option-${parameter.name}`;
  let input;
  if (parameter.type === "boolean") {
    input = element("input", { type: "checkbox", checked: Boolean(parameter.default) });
  } else if (parameter.type === "choice") {
    input = element("select");
    if (parameter.default === null) input.append(element("option", { value: "", textContent: "(none)" }));
    for (const choice of parameter.choices || []) {
      input.append(element("option", { value: choice, textContent: choice, selected: choice === parameter.default }));
    }
  } else if (parameter.type === "integer" || parameter.type === "number") {
    input = element("input", { type: "number", step: parameter.type === "integer" ? "1" : "any",
                               value: asText(parameter.default) });
    if (parameter.minimum !== null && parameter.minimum !== undefined) input.min = parameter.minimum;
    if (parameter.maximum !== null && parameter.maximum !== undefined) input.max = parameter.maximum;
  } else {
    input = element("input", { type: "text", value: asText(parameter.default) });
  }
  Object.assign(input, { id, name: parameter.name });
  input.dataset.default = parameter.type === "boolean" ? String(Boolean(parameter.default)) : asText(parameter.default);
  input.setAttribute("aria-describedby", `${id}-help error-${parameter.name}`);
  const field = element("div", { className: parameter.type === "boolean" ? "option check" : "option" });
  field.append(element("label", { htmlFor: id, textContent: parameter.name.replaceAll("_", " ") }), input,
               element("small", { id: `${id}-help`, textContent: `${parameter.description} (${parameter.allowed})` }),
               element("span", { className: "error", id: `error-${parameter.name}`, role: "alert" }));
  return field;
}

function showOptions() {
  const chosen = formats[$("format").value];
  $("format-description").textContent = chosen ? chosen.description : "";
  $("option-fields").replaceChildren(
    ...(chosen ? chosen.parameters.filter((parameter) => parameter.name !== "format").map(optionField) : []));
}

async function loadFormats() {
  const body = await json("/api/formats/");
  const previous = $("format").value;
  formats = Object.fromEntries(body.formats.map((format) => [format.name, format]));
  $("format").replaceChildren(...body.formats.map((format) =>
    element("option", { value: format.name, textContent: `${format.name} (${format.mime_type})` })));
  $("format").value = formats[previous] ? previous : (formats.gif ? "gif" : body.formats[0].name);
  showOptions();
}

$("format").addEventListener("change", showOptions);

// Only the options changed from their defaults are sent: the server's defaults stay the server's.
function changedOptions() {
  const changed = [];
  for (const input of $("option-fields").querySelectorAll("input, select")) {
    const value = input.type === "checkbox" ? String(input.checked) : input.value.trim();
    if (value !== input.dataset.default) changed.push([input.name, value]);
  }
  return changed;
}

const dropZone = $("drop-zone");
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => { event.preventDefault(); dropZone.classList.add("over"); });
}
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  if (event.dataTransfer.files.length) $("file").files = event.dataTransfer.files;
});

$("convert-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("convert-form");
  clearErrors(form);
  const file = $("file").files[0];
  const url = $("url").value.trim();
  if (!file && !url) {
    $("source-error").textContent = "Pick or drop a video, or paste its URL.";
    return;
  }
  const body = new FormData();
  if (file) body.append("file", file);
  else body.append("url", url);
  body.append("format", $("format").value);
  for (const [name, value] of changedOptions()) body.append(name, value);
  $("convert").disabled = true;
  try {
    const created = await json("/api/tasks/create/", { method: "POST", body });
    follow(created.task_id);
    refreshTasks();
  } catch (error) {
    showError(error, $("form-error"));
  } finally {
    $("convert").disabled = false;
  }
});

// ------------------------------------------------------------------------------------------- one task

function stopFollowing() {
  if (!following) return;
  if (following.source) following.source.close();
  clearTimeout(following.timer);
  following = null;
}

// The event stream when there is one (an EventSource cannot send a key: with a key, polling straight away).
function follow(taskId) {
  stopFollowing();
  following = { id: taskId, source: null, timer: null };
  const section = $("task-section");
  section.hidden = false;
  clearErrors(section);
  $("task-id").textContent = taskId;
  $("preview").replaceChildren();
  $("download").hidden = true;
  showProgress({ status: "queued", progress: 0 });
  if (apiKey() || !("EventSource" in window)) {
    poll(taskId);
    return;
  }
  const source = new EventSource(`/api/tasks/${encodeURIComponent(taskId)}/events/`);
  following.source = source;
  const onEvent = (event) => update(taskId, JSON.parse(event.data));
  source.addEventListener("progress", onEvent);
  for (const name of FINAL) source.addEventListener(name, (event) => { source.close(); onEvent(event); });
  // 404 (no events route), a dropped connection, or the stream's end: the status route tells the rest.
  source.onerror = () => {
    source.close();
    if (following && following.id === taskId && !following.finished) poll(taskId);
  };
}

async function poll(taskId) {
  if (!following || following.id !== taskId) return;
  try {
    update(taskId, await json(`/api/tasks/${encodeURIComponent(taskId)}/status/`));
  } catch (error) {
    showError(error, $("task-error"));
    return;
  }
  if (following && following.id === taskId && !following.finished) {
    following.timer = setTimeout(() => poll(taskId), POLL_MS);
  }
}

function showProgress(status) {
  $("progress").value = status.progress;
  $("progress-text").textContent = `${status.status} ${status.progress}%`;
}

function update(taskId, status) {
  if (!following || following.id !== taskId || following.finished) return;
  showProgress(status);
  if (!FINAL.has(status.status)) return;
  following.finished = true;
  if (status.status === "done") showResult(taskId);
  if (status.status === "failed") $("task-error").textContent = status.error_message;
  refreshTasks();
}

async function showResult(taskId) {
  try {
    const { result } = await json(`/api/tasks/${encodeURIComponent(taskId)}/result/`);
    const type = (formats[result.format] || {}).mime_type || "";
    const tag = type.startsWith("image/") ? "img" : type.startsWith("video/") ? "video"
      : type.startsWith("audio/") ? "audio" : null;
    if (tag) {
      const media = element(tag, { src: await fileUrl(result.output_url) });
      if (tag === "img") media.alt = `The result of task ${taskId}`;
      else Object.assign(media, { controls: true, loop: true, muted: true, autoplay: true });
      media.id = "preview-media";
      $("preview").replaceChildren(media);
    }
    const link = $("download");
    Object.assign(link, { href: await fileUrl(result.download_url), download: result.filename,
                          textContent: `Download ${result.filename}` });
    link.hidden = false;
  } catch (error) {
    showError(error, $("task-error"));
  }
}

// ------------------------------------------------------------------------------------------- recent tasks

function actionButton(label, taskId, action) {
  const button = element("button", { type: "button", textContent: label });
  button.setAttribute("aria-label", `${label} task ${taskId}`);
  button.addEventListener("click", async () => {
    $("tasks-error").textContent = "";
    try {
      await action();
    } catch (error) {
      showError(error, $("tasks-error"));
    }
    refreshTasks();
  });
  return button;
}

function taskRow(task) {
  const id = task.task_id;
  const path = `/api/tasks/${encodeURIComponent(id)}`;
  const select = element("input", { type: "checkbox", value: id, className: "select-task" });
  select.setAttribute("aria-label", `Select task ${id}`);
  select.addEventListener("change", updateZipButton);
  const actions = element("td", { className: "actions" });
  actions.append(actionButton("Show", id, async () => follow(id)));
  if (!FINAL.has(task.status)) {
    actions.append(actionButton("Cancel", id, () => api(`${path}/cancel/`, { method: "POST" })));
  }
  if (task.status === "failed" || task.status === "cancelled") {
    actions.append(actionButton("Retry", id, async () => { await api(`${path}/retry/`, { method: "POST" }); follow(id); }));
  }
  actions.append(actionButton("Delete", id, async () => {
    await api(`${path}/`, { method: "DELETE" });
    if (following && following.id === id) { stopFollowing(); $("task-section").hidden = true; }
  }));
  const status = element("td", { className: `status ${task.status}`, textContent:
    task.status === "running" ? `running ${task.progress}%` : task.status });
  if (task.error_message) status.title = task.error_message;
  const row = element("tr", { id: `task-${id}` });
  row.dataset.status = task.status;
  const cell = (text) => element("td", { textContent: text });
  const pick = element("td");
  pick.append(select);
  row.append(pick, cell(id), cell(task.original_filename), cell(task.target_format), status,
             cell(task.created_at.replace("T", " ").replace("Z", " UTC")), actions);
  return row;
}

function selectedIds() {
  return [...document.querySelectorAll(".select-task:checked")].map((box) => box.value);
}

function updateZipButton() {
  $("zip").disabled = selectedIds().length === 0;
}

async function refreshTasks() {
  clearTimeout(listTimer);
  const query = new URLSearchParams({ per_page: "20" });
  if ($("status-filter").value) query.set("status", $("status-filter").value);
  let body;
  try {
    body = await json(`/api/tasks/?${query}`);
  } catch (error) {
    showError(error, $("tasks-error"));
    return;
  }
  const kept = new Set(selectedIds());
  const rows = body.tasks.map(taskRow);
  rows.forEach((row) => { row.querySelector(".select-task").checked = kept.has(row.querySelector(".select-task").value); });
  document.querySelector("#tasks tbody").replaceChildren(...rows);
  $("no-tasks").hidden = rows.length > 0;
  $("select-all").checked = false;
  updateZipButton();
  if (body.tasks.some((task) => !FINAL.has(task.status))) listTimer = setTimeout(refreshTasks, 2000);
}

$("status-filter").addEventListener("change", refreshTasks);
$("refresh").addEventListener("click", refreshTasks);
$("select-all").addEventListener("change", () => {
  document.querySelectorAll(".select-task").forEach((box) => { box.checked = $("select-all").checked; });
  updateZipButton();
});
$("zip").addEventListener("click", async () => {
  $("tasks-error").textContent = "";
  try {
    const response = await api("/api/tasks/batch-download/", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ task_ids: selectedIds() }),
    });
    saveBlob(await response.blob(), "transmute-results.zip");
  } catch (error) {
    showError(error, $("tasks-error"));
  }
});

// ------------------------------------------------------------------------------------------- start

// Formats first: their options make the form. A 401 on the way shows the key field (api() does).
async function start() {
  try {
    await loadFormats();
  } catch (error) {
    if (error.status !== 401) showError(error, $("form-error"));
    return;
  }
  if (apiKey()) {  // a key is in use: keep it where it can be changed
    $("key-section").hidden = false;
    $("api-key").value = apiKey();
  }
  $("key-error").textContent = "";
  refreshTasks();
}

start();
