// The dlipkg API as the console uses it: every call carries X-Auth-Token when a token was
// given (never in a URL), and every failure becomes an ApiError holding the server's own
// error_code and error_msg, so the page shows what the server wrote.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(code ? `${code}: ${message}` : message);
    this.status = status;
    this.code = code;
  }
}

// A failed answer's text as the server wrote it; a body that is not the DLI error shape is
// shown with its HTTP status, never dropped.
function errorFrom(status, statusText, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error_msg === 'string') {
      return new ApiError(status, String(body.error_code || ''), body.error_msg);
    }
  } catch (_) { /* not JSON: fall through */ }
  const detail = text ? `: ${text.slice(0, 500)}` : '';
  return new ApiError(status, '', `HTTP ${status} ${statusText}${detail}`);
}

export class Api {
  constructor(project, token) {
    this.project = project;
    this.token = token || '';
  }

  base() {
    return `/v2.0/${encodeURIComponent(this.project)}`;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers['X-Auth-Token'] = this.token;
    return headers;
  }

  async call(method, path, body) {
    const init = { method, headers: this.headers(), credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.base() + path, init);
    } catch (e) {
      throw new ApiError(0, '', `The server could not be reached (${e.message}).`);
    }
    const text = await response.text();
    if (!response.ok) throw errorFrom(response.status, response.statusText, text);
    if (!text) return {};
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new ApiError(response.status, '', 'The server answered something that is not JSON.');
    }
  }

  // One page of the listing: {resources, groups, total, ...}.
  list({ kind, tag, name, limit, offset }) {
    const q = new URLSearchParams();
    if (kind) q.set('kind', kind);
    if (tag) q.set('tags', tag);
    if (name) q.set('name', name);
    q.set('limit', String(limit));
    q.set('offset', String(offset));
    return this.call('GET', `/resources?${q}`);
  }

  show(group, name) {
    const q = group ? `?group=${encodeURIComponent(group)}` : '';
    return this.call('GET', `/resources/${encodeURIComponent(name)}${q}`);
  }

  addByUrl({ paths, kind, group, tags, isAsync }) {
    const body = { paths, kind, is_async: isAsync };
    if (group) body.group = group;
    if (tags.length) body.tags = tags;
    return this.call('POST', '/resources', body);
  }

  // typed: "pyfiles" | "jars" | "files"; replaces the group whole.
  replaceGroup(typed, group, paths) {
    return this.call('POST', `/resources/${typed}`, { paths, group });
  }

  remove(group, name) {
    const q = group ? `?group=${encodeURIComponent(group)}` : '';
    return this.call('DELETE', `/resources/${encodeURIComponent(name)}${q}`);
  }

  changeOwner(group, name, newOwner) {
    const body = { new_owner: newOwner };
    if (group) body.group_name = group;
    if (name) body.resource_name = name;
    return this.call('PUT', '/resources/owner', body);
  }

  // Presigned read URLs: {urls: [{resource_name, resource_type, group_name, url, ...}]}.
  presign(group, names) {
    const body = { expires_in: 3600 };
    if (group) body.group = group;
    if (names) body.resource_names = names;
    return this.call('POST', '/resources/urls', body);
  }

  // The stored bytes, for a download when presigned URLs are not available.
  async content(group, name) {
    const q = group ? `?group=${encodeURIComponent(group)}` : '';
    const response = await fetch(`${this.base()}/resources/${encodeURIComponent(name)}/content${q}`,
      { headers: this.headers(), credentials: 'omit', cache: 'no-store' });
    if (!response.ok) {
      throw errorFrom(response.status, response.statusText, await response.text());
    }
    return response.blob();
  }

  // Whether the server already has these bytes (HEAD /blobs/{sha256}: 200 yes, 404 no).
  async hasBlob(sha256) {
    const response = await fetch(`${this.base()}/blobs/${sha256}`,
      { method: 'HEAD', headers: this.headers(), credentials: 'omit', cache: 'no-store' });
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw errorFrom(response.status, response.statusText, '');
  }

  // Stages bytes under their SHA-256 for a later commit (PUT /blobs/{sha256}).
  stageBlob(file, sha256, onProgress) {
    return this.send('PUT', `${this.base()}/blobs/${sha256}`, file, onProgress);
  }

  // Makes `group` hold exactly `packages` ([{name, kind, sha256}]), all or nothing.
  commitGroup(group, packages) {
    return this.call('POST', '/resources/commit', { group, packages });
  }

  // Streams one local file through the direct-upload route; onProgress(sent, total).
  // Resolves with the package, rejects with an ApiError. XMLHttpRequest because fetch has no
  // upload progress.
  upload(file, { name, kind, group }, onProgress) {
    const q = new URLSearchParams({ kind });
    if (group) q.set('group', group);
    const url = `${this.base()}/resources/${encodeURIComponent(name)}/content?${q}`;
    return this.send('PUT', url, file, onProgress);
  }

  send(method, url, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      for (const [k, v] of Object.entries(this.headers())) xhr.setRequestHeader(k, v);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(file.size, file.size);
          try {
            resolve(xhr.responseText ? JSON.parse(xhr.responseText) : {});
          } catch (_) {
            resolve({});
          }
        } else {
          reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
        }
      };
      xhr.onerror = () => reject(new ApiError(0, '', 'The upload was cut off (network error).'));
      xhr.onabort = () => reject(new ApiError(0, '', 'The upload was cancelled.'));
      xhr.send(file);
    });
  }
}
