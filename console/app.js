// The dlipkg console: sign-in, one paged table of groups and packages, and the actions on them.
// It talks to the same API as every other client, one page at a time (never the whole
// project), and inserts every value as text (dom.js).
import { Api, ApiError } from './api.js';
import { $, el, formatSize, formatTime, shellQuote } from './dom.js';

const PROJECT_KEY = 'dlipkg.project';
const TOKEN_KEY = 'dlipkg.token';
const POLL_MS = 1000;

const state = {
  api: null,
  offset: 0,
  filters: { name: '', kind: '', tag: '', limit: 50 },
  pollTimer: 0,
  loadSeq: 0,
};

// ---- messages ----------------------------------------------------------------------------

function showError(error) {
  const box = $('error');
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function notice(text) {
  $('notice').textContent = text;
}

// Every action runs through here: its failure is shown, never swallowed.
async function act(fn) {
  clearError();
  try {
    await fn();
  } catch (e) {
    showError(e);
  }
}

async function copyText(text, what) {
  $('copied').textContent = text;
  let done = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      done = true;
    }
  } catch (_) { /* fall back below */ }
  if (!done) {
    const area = el('textarea', { class: 'offscreen', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      done = document.execCommand('copy');
    } catch (_) {
      done = false;
    }
    area.remove();
  }
  notice(done ? `Copied ${what}.` : `Select and copy ${what} from "Last copied" below.`);
}

// ---- sign-in -----------------------------------------------------------------------------

function showSignIn(message) {
  $('console').hidden = true;
  $('sign-in').hidden = false;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('project').value = localStorage.getItem(PROJECT_KEY) || '';
  const old = $('sign-in').querySelector('.error');
  if (old) old.remove();
  if (message) $('sign-in-form').before(el('p', { class: 'error', role: 'alert' }, message));
  ($('project').value ? $('token') : $('project')).focus();
}

async function openProject(project, token) {
  state.api = new Api(project, token);
  state.offset = 0;
  try {
    await load();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(e.message);
      return;
    }
    showError(e);
  }
  $('sign-in').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = false;
  $('who').textContent = `project ${project}`;
  const url = new URL(window.location.href);
  if (url.searchParams.get('project') !== project) {
    url.searchParams.set('project', project);
    history.replaceState(null, '', url);
  }
}

function onSignIn(event) {
  event.preventDefault();
  const project = $('project').value.trim();
  const token = $('token').value.trim();
  if (!project) return;
  localStorage.setItem(PROJECT_KEY, project);
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('token').value = '';
  openProject(project, token);
}

function onSignOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.pollTimer);
  state.api = null;
  $('rows').replaceChildren();
  showSignIn('');
}

// ---- the table ---------------------------------------------------------------------------

function cell(label, ...children) {
  return el('td', { 'data-label': label }, ...children);
}

// How far an asynchronous upload got: bytes fetched of the size the source announced (a bar
// with a value), or bytes and elapsed time with an indeterminate bar while the size is unknown;
// the attempt when it is a retry, and why the previous attempt failed.
function uploadProgress(p) {
  const got = Number(p.bytes_fetched) || 0;
  const total = Number(p.expected_size) || 0;  // null (unknown) and 0 both mean no bar value
  const label = `uploading ${p.resource_name}`;
  const parts = [];
  if (total > 0) {
    const pct = Math.min(100, Math.floor((got * 100) / total));
    parts.push(el('progress', { class: 'live', 'aria-label': label, max: total,
      value: Math.min(got, total) }),
    el('span', { class: 'fetched' }, `${formatSize(got)} of ${formatSize(total)} (${pct}%)`));
  } else {
    const since = Math.max(0, Math.round((Date.now() - (p.update_time || Date.now())) / 1000));
    parts.push(el('progress', { class: 'live', 'aria-label': label }),
      el('span', { class: 'fetched' }, got ? `${formatSize(got)}, ${since} s` : `${since} s`));
  }
  if (Number(p.attempt) > 1) parts.push(el('span', { class: 'attempt' }, `attempt ${p.attempt}`));
  if (p.status_reason) {
    parts.push(el('div', { class: 'reason' }, `last attempt: ${p.status_reason}`));
  }
  return parts;
}

function statusCell(p) {
  const badge = el('span', { class: `status status-${String(p.status).toLowerCase()}` }, p.status);
  const parts = [badge];
  if (p.status === 'UPLOADING') parts.push(...uploadProgress(p));
  if (p.status === 'FAILED' && p.status_reason) {
    parts.push(el('div', { class: 'reason' }, p.status_reason));
  }
  return cell('Status', ...parts);
}

function shaCell(p) {
  if (!p.sha256) return cell('SHA-256');
  return cell('SHA-256', el('button', {
    type: 'button', class: 'sha link', title: `${p.sha256} (click to copy)`,
    onclick: () => copyText(p.sha256, 'the SHA-256'),
  }, p.sha256.slice(0, 12)));
}

function tagsCell(tags) {
  return cell('Tags', ...(tags || []).map((t) =>
    el('span', { class: 'tag' }, t.value ? `${t.key}=${t.value}` : t.key)));
}

function button(text, label, onclick, extra = {}) {
  return el('button', { type: 'button', 'aria-label': label, onclick, ...extra }, text);
}

function packageRow(p, group) {
  const name = p.resource_name;
  const what = group ? `${name} in ${group}` : name;
  return el('tr', { class: group ? 'pkg in-group' : 'pkg', 'data-name': name,
    'data-group': group || '', 'data-status': p.status },
  cell('Name', el('span', { class: 'name' }, name)),
  cell('Type', p.resource_type),
  statusCell(p),
  cell('Size', el('span', { title: `${p.size} bytes` }, formatSize(p.size))),
  shaCell(p),
  cell('Owner', p.owner),
  tagsCell(p.tags),
  cell('Created', formatTime(p.create_time)),
  cell('Updated', formatTime(p.update_time)),
  cell('Actions', el('div', { class: 'row-actions' },
    button('Download', `download ${what}`, () => act(() => download(group, name)),
      { disabled: !p.sha256 }),
    button('Copy URL', `copy a presigned URL of ${what}`,
      () => act(() => copyUrl(group, name)), { disabled: p.status !== 'READY' }),
    button('Owner', `change the owner of ${what}`, () => openOwner(group, name)),
    button('Delete', `delete ${what}`, () => openConfirm(group, name), { class: 'danger' }))));
}

function groupRow(g) {
  const details = g.details || [];
  const kinds = [...new Set(details.map((p) => p.resource_type))].join(', ');
  const size = details.reduce((sum, p) => sum + (p.size || 0), 0);
  const name = g.group_name;
  return el('tr', { class: 'group', 'data-group': name, 'data-status': g.status },
    cell('Group', el('span', { class: 'name' }, name),
      el('span', { class: 'count' }, ` (${details.length} on this page)`)),
    cell('Type', kinds),
    cell('Status', el('span', { class: `status status-${String(g.status).toLowerCase()}` },
      g.status)),
    cell('Size', formatSize(size)),
    cell('SHA-256'),
    cell('Owner', g.owner),
    cell('Tags'),
    cell('Created', formatTime(g.create_time)),
    cell('Updated', formatTime(g.update_time)),
    cell('Actions', el('div', { class: 'row-actions' },
      button('Spark args', `copy the spark-submit arguments of group ${name}`,
        () => act(() => copySparkArgs(name))),
      button('Owner', `change the owner of group ${name}`, () => openOwner(name, '')),
      button('Replace', `replace group ${name}`, () => openReplace(name)))));
}

function render(page) {
  const rows = [];
  for (const p of page.resources || []) rows.push(packageRow(p, ''));
  for (const g of page.groups || []) {
    rows.push(groupRow(g));
    for (const p of g.details || []) rows.push(packageRow(p, g.group_name));
  }
  if (!rows.length) {
    rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 10 },
      state.offset ? 'No more packages.' : 'No packages match.')));
  }
  $('rows').replaceChildren(...rows);
  const total = Number(page.total || 0);
  const shown = (page.resources || []).length +
    (page.groups || []).reduce((n, g) => n + (g.details || []).length, 0);
  const first = shown ? state.offset + 1 : 0;
  const last = state.offset + shown;
  $('page-info').textContent = `${first}–${last} of ${total.toLocaleString('en')} packages`;
  $('caption').textContent = `Packages of project ${state.api.project}`;
  $('prev').disabled = state.offset === 0;
  $('next').disabled = last >= total;
  document.body.dataset.loaded = String(state.loadSeq);
  // For bench/console_load.py: time to first render, from the start of navigation.
  if (!performance.getEntriesByName('dlipkg-table-rendered').length) {
    performance.mark('dlipkg-table-rendered');
  }
}

// Loads the current page; while anything on it is UPLOADING, polls it again.
async function load() {
  clearTimeout(state.pollTimer);
  const seq = ++state.loadSeq;
  const f = state.filters;
  const page = await state.api.list({ ...f, offset: state.offset });
  if (seq !== state.loadSeq) return;  // a newer load started meanwhile
  render(page);
  const uploading = (page.resources || []).some((p) => p.status === 'UPLOADING') ||
    (page.groups || []).some((g) => (g.details || []).some((p) => p.status === 'UPLOADING'));
  if (uploading) {
    state.pollTimer = setTimeout(() => load().catch(showError), POLL_MS);
  }
}

function reload() {
  return act(load);
}

function onFilter(event) {
  if (event) event.preventDefault();
  state.filters = {
    name: $('f-name').value.trim(),
    kind: $('f-kind').value,
    tag: $('f-tag').value.trim(),
    limit: Number($('f-limit').value) || 50,
  };
  state.offset = 0;
  reload();
}

// ---- actions -----------------------------------------------------------------------------

function kindOf(fileName) {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.jar')) return 'jar';
  if (lower.endsWith('.py') || lower.endsWith('.zip') || lower.endsWith('.egg')) return 'pyFile';
  return 'file';
}

async function uploadFiles(files) {
  const group = $('upload-group').value.trim();
  const chosen = $('upload-kind').value;
  const jobs = [...files].map((file) => {
    const bar = el('progress', { max: Math.max(file.size, 1), value: 0 });
    const text = el('span', { class: 'pct' }, '0%');
    const outcome = el('span', { class: 'outcome' });
    const item = el('li', { 'data-file': file.name }, el('span', { class: 'name' }, file.name),
      bar, text, outcome);
    $('uploads').append(item);
    const kind = chosen || kindOf(file.name);
    return state.api.upload(file, { name: file.name, kind, group }, (sent, total) => {
      bar.max = Math.max(total, 1);
      bar.value = sent;
      text.textContent = `${total ? Math.floor((sent * 100) / total) : 100}%`;
    }).then(() => {
      item.dataset.state = 'done';
      outcome.textContent = 'uploaded';
    }, (e) => {
      item.dataset.state = 'failed';
      outcome.textContent = e.message;
      throw e;
    });
  });
  const results = await Promise.allSettled(jobs);
  await load();
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length) throw failed[0].reason;
  notice(`Uploaded ${results.length} file(s).`);
}

function parseTags(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? { key: pair, value: '' }
      : { key: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim() };
  });
}

function lines(text) {
  return text.split('\n').map((s) => s.trim()).filter(Boolean);
}

async function download(group, name) {
  let url = '';
  try {
    const answer = await state.api.presign(group, [name]);
    url = answer.urls && answer.urls[0] && answer.urls[0].url;
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'APIGW.0101')) throw e;
  }
  let objectUrl = '';
  if (!url) {  // a server without presigned URLs: fetch with the token header instead
    objectUrl = URL.createObjectURL(await state.api.content(group, name));
  }
  const a = el('a', { href: url || objectUrl, download: name, class: 'offscreen' });
  document.body.append(a);
  a.click();
  a.remove();
  if (objectUrl) setTimeout(() => URL.revokeObjectURL(objectUrl), 60000);
  notice(`Downloading ${name}.`);
}

async function copyUrl(group, name) {
  const answer = await state.api.presign(group, [name]);
  const entry = (answer.urls || [])[0];
  if (!entry) throw new Error(`The server returned no URL for ${name}.`);
  await copyText(absolute(entry.url), `a URL of ${name} (valid 1 hour)`);
}

function absolute(url) {
  return new URL(url, window.location.href).href;
}

// spark-submit --py-files/--jars/--files from presigned URLs of every READY package.
export function sparkArgs(urls) {
  const by = { pyFile: [], jar: [], file: [], modelFile: [] };
  for (const u of urls) (by[u.resource_type] || by.file).push(absolute(u.url));
  const parts = [];
  if (by.pyFile.length) parts.push(`--py-files ${shellQuote(by.pyFile.join(','))}`);
  if (by.jar.length) parts.push(`--jars ${shellQuote(by.jar.join(','))}`);
  const files = [...by.file, ...by.modelFile];
  if (files.length) parts.push(`--files ${shellQuote(files.join(','))}`);
  return parts.join(' ');
}

async function copySparkArgs(group) {
  const answer = await state.api.presign(group, null);
  const urls = answer.urls || [];
  if (!urls.length) throw new Error(`Group ${group} has no READY package to hand to Spark.`);
  await copyText(sparkArgs(urls), `the spark-submit arguments of ${group}`);
}

// ---- dialogs -----------------------------------------------------------------------------

function dialogError(dialog, error) {
  const box = dialog.querySelector('.dialog-error');
  box.textContent = error ? error.message : '';
  box.hidden = !error;
}

// Runs `work` on submit; closes and reloads on success, shows the error inside otherwise.
function wireDialog(id, work) {
  const dialog = $(id);
  dialog.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    dialogError(dialog, null);
    const submit = dialog.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const message = await work();
      dialog.close();
      clearError();
      notice(message);
      await load();
    } catch (e) {
      dialogError(dialog, e);
    } finally {
      submit.disabled = false;
    }
  });
  dialog.querySelector('.cancel').addEventListener('click', () => dialog.close());
}

function openDialog(id) {
  const dialog = $(id);
  dialogError(dialog, null);
  dialog.showModal();
}

let ownerTarget = { group: '', name: '' };
function openOwner(group, name) {
  ownerTarget = { group, name };
  $('owner-target').textContent = name ? (group ? `${name} in group ${group}` : name)
    : `group ${group}`;
  $('owner-name').value = '';
  openDialog('owner-dialog');
}

let deleteTarget = { group: '', name: '' };
function openConfirm(group, name) {
  deleteTarget = { group, name };
  $('confirm-text').textContent = group ? `Delete ${name} from group ${group}?`
    : `Delete ${name}?`;
  openDialog('confirm-dialog');
}

function openReplace(group) {
  $('rg-group').value = group || '';
  openDialog('replace-dialog');
}

async function sha256Hex(file) {
  if (!(window.crypto && crypto.subtle)) {
    throw new Error('Hashing local files needs a secure context: open the console over https ' +
      'or from localhost / 127.0.0.1.');
  }
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// Local bytes: each file staged under its SHA-256 (skipped when the server has it), then one
// all-or-nothing commit naming them all (docs/api.md, "Whole-group replacement").
async function replaceWithFiles(typed, group, files) {
  const kind = { pyfiles: 'pyFile', jars: 'jar', files: 'file' }[typed];
  const packages = [];
  for (const file of files) {
    const sha256 = await sha256Hex(file);
    const item = el('li', { 'data-file': file.name }, el('span', { class: 'name' }, file.name));
    $('uploads').append(item);
    if (!(await state.api.hasBlob(sha256))) {
      const bar = el('progress', { max: Math.max(file.size, 1), value: 0 });
      item.append(bar);
      await state.api.stageBlob(file, sha256, (sent) => { bar.value = sent; });
    }
    item.dataset.state = 'done';
    item.append(el('span', { class: 'outcome' }, 'staged'));
    packages.push({ name: file.name, kind, sha256 });
  }
  await state.api.commitGroup(group, packages);
}

function wireDialogs() {
  wireDialog('add-url-dialog', async () => {
    const paths = lines($('au-paths').value);
    const answer = await state.api.addByUrl({
      paths, kind: $('au-kind').value, group: $('au-group').value.trim(),
      tags: parseTags($('au-tags').value), isAsync: $('au-async').checked,
    });
    $('au-paths').value = '';
    return `Added ${paths.length} package(s)${answer.status ? `: ${answer.status}` : ''}.`;
  });
  wireDialog('replace-dialog', async () => {
    const group = $('rg-group').value.trim();
    const typed = $('rg-kind').value;
    const files = $('rg-files').files;
    if (files && files.length) await replaceWithFiles(typed, group, files);
    else await state.api.replaceGroup(typed, group, lines($('rg-paths').value));
    $('rg-paths').value = '';
    $('rg-files').value = '';
    return `Replaced group ${group}.`;
  });
  wireDialog('owner-dialog', async () => {
    const owner = $('owner-name').value.trim();
    await state.api.changeOwner(ownerTarget.group, ownerTarget.name, owner);
    return `Owner changed to ${owner}.`;
  });
  wireDialog('confirm-dialog', async () => {
    await state.api.remove(deleteTarget.group, deleteTarget.name);
    return `Deleted ${deleteTarget.name}.`;
  });
}

// ---- wiring ------------------------------------------------------------------------------

function wireDrop() {
  const drop = $('drop');
  const start = (files) => {
    if (files && files.length) act(() => uploadFiles(files));
  };
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    start(e.dataTransfer && e.dataTransfer.files);
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      $('file-input').click();
    }
  });
  $('file-input').addEventListener('change', () => {
    start($('file-input').files);
    $('file-input').value = '';
  });
}

function init() {
  $('sign-in-form').addEventListener('submit', onSignIn);
  $('sign-out').addEventListener('click', onSignOut);
  $('filters').addEventListener('submit', onFilter);
  let debounce = 0;
  $('f-name').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(onFilter, 300);
  });
  $('f-kind').addEventListener('change', () => onFilter());
  $('f-limit').addEventListener('change', () => onFilter());
  $('refresh').addEventListener('click', reload);
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - state.filters.limit);
    reload();
  });
  $('next').addEventListener('click', () => {
    state.offset += state.filters.limit;
    reload();
  });
  $('open-upload').addEventListener('click', () => $('file-input').click());
  $('open-add-url').addEventListener('click', () => openDialog('add-url-dialog'));
  $('open-replace').addEventListener('click', () => openReplace(''));
  wireDrop();
  wireDialogs();

  const fromUrl = new URLSearchParams(window.location.search).get('project');
  if (fromUrl) localStorage.setItem(PROJECT_KEY, fromUrl);
  const project = fromUrl || localStorage.getItem(PROJECT_KEY);
  if (project) openProject(project, sessionStorage.getItem(TOKEN_KEY) || '');
  else showSignIn('');
}

init();
