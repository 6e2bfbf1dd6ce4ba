// Calls dlipkg exactly as the official Node.js SDK does, for tests/integration/test_auth.py:
// the request is built and signed by @huaweicloud/huaweicloud-sdk-core's own HcClient,
// BasicCredentials and AKSKSigner (SDK-HMAC-SHA256), nothing re-implemented here.
//
//   node sdk_call.js '<json>'
//   json: {mode: "send" | "sign", endpoint, ak, sk, project_id, security_token?,
//          method, url: "/v2.0/{project_id}/resources/...", path_params?: {}, query?: {},
//          body?: {}}
//
// send: the SDK sends it; prints {"status", "body"} or {"status", "error_code", "error_msg"}.
// sign: prints the request the SDK would send, {"method", "url", "headers", "body"}, so the
//       test can send it as is, or tampered with.
// The result is the last line of stdout (the SDK's logger may print before it).
'use strict';

const querystring = require('querystring');
const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core');
const { ClientBuilder } = require('@huaweicloud/huaweicloud-sdk-core/ClientBuilder');

function buildClient(spec) {
  const credentials = new BasicCredentials()
    .withAk(spec.ak)
    .withSk(spec.sk)
    .withProjectId(spec.project_id);
  if (spec.security_token) credentials.withSecurityToken(spec.security_token);
  return new ClientBuilder((hcClient) => hcClient)
    .withCredential(credentials)
    .withEndpoint(spec.endpoint)
    .build();
}

// The options a generated service client (huaweicloud-sdk-dli) hands to HcClient.
function requestOptions(spec) {
  const options = {
    method: spec.method,
    url: spec.url,
    contentType: 'application/json',
    queryParams: spec.query || {},
    pathParams: spec.path_params || {},
    headers: {},
  };
  if (spec.body !== undefined && spec.body !== null) options.data = spec.body;
  return options;
}

async function send(client, spec) {
  try {
    const response = await client.sendRequest(requestOptions(spec));
    const status = response.httpStatusCode;
    delete response.httpStatusCode;
    return { status, body: response };
  } catch (error) {
    return { status: error.httpStatusCode, error_code: error.errorCode, error_msg: error.errorMsg };
  }
}

async function sign(client, spec) {
  const request = await client.buildRequest(requestOptions(spec));
  // What DefaultHttpClient then sends: baseURL + url, the query as querystring writes it, the
  // body as axios serialises an object (JSON.stringify).
  const query = querystring.stringify(request.queryParams || {});
  return {
    method: request.method,
    url: spec.endpoint + request.url + (query ? '?' + query : ''),
    headers: request.headers,
    body: request.data === undefined ? null : JSON.stringify(request.data),
  };
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = buildClient(spec);
  const result = spec.mode === 'sign' ? await sign(client, spec) : await send(client, spec);
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + '\n');
  process.exit(1);
});
