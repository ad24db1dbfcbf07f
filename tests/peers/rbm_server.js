#!/usr/bin/env node
// A loopback RCS Business Messaging API server for relay's tests, written to
// the published REST reference (rcsbusinessmessaging.googleapis.com v1):
//
//   POST   /v1/phones/{E.164}/agentMessages?messageId=&agentId=   agentMessages.create
//   DELETE /v1/phones/{E.164}/agentMessages/{messageId}?agentId=  agentMessages.delete (revoke)
//   GET    /v1/phones/{E.164}/capabilities?requestId=&agentId=    phones.getCapabilities
//
// Bearer tokens are checked, AgentMessage bodies validated field by field
// (unknown fields, unions, enums, documented limits), errors answered in
// Google's shape {"error": {"code", "message", "status"}}. A messageId seen
// before is 409 ALREADY_EXISTS; a number that is not RCS-capable is 404.
//
// It also plays Google's Pub/Sub push: with --webhook-url and
// --webhook-secret it POSTs signed webhooks (x-goog-signature =
// base64(HMAC-SHA512(secret, decoded data)), data = base64 UserEvent or
// UserMessage JSON) automatically after each accepted message
// (--auto-events delivered,read) or on POST /_test/push.
//
// Test control (same port, never counted as API traffic):
//   GET  /_test/messages   accepted messages in arrival order
//   GET  /_test/stats      counters (api_connections = TCP connections that carried API calls)
//   POST /_test/config     {"fail": {"status": 429, "count": 3}, "delay_ms": 0,
//                           "not_capable": ["+81..."], "tokens": ["..."],
//                           "auto_events": ["delivered", "read"],
//                           "webhook_url": "...", "webhook_secret": "..."}
//   POST /_test/push       {"messageId", "type": "DELIVERED"|"READ"|"IS_TYPING"|"TEXT"|"SUGGESTION",
//                           "text", "postbackData", "phone", "eventId", "signature": "bad"|"none"}
//                          -> {"status": <the webhook's HTTP answer>, "eventId"}
//   POST /_test/drop_connections   close every API connection (idle keep-alive ones too)
//   POST /_test/reset      forget messages and counters
//
// Options: --port N (0: any; the port is the first stdout line), --token T
// (repeatable; default test-token), --agent-id A, --not-capable LIST,
// --fail-status S --fail-first N, --delay-ms N, --webhook-url U,
// --webhook-secret S, --auto-events LIST, --no-record (keep ids only; for
// benchmarks), --tls-cert PEM --tls-key PEM (serve https; /_test too).
'use strict';

const http = require('http');
const crypto = require('crypto');

// ---- options -----------------------------------------------------------------
const opts = {
  port: 0, tokens: [], agentId: '', notCapable: new Set(), failStatus: 0, failCount: 0,
  delayMs: 0, webhookUrl: '', webhookSecret: '', autoEvents: [], record: true, tlsCert: '', tlsKey: '',
};
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const next = () => a[++i];
    switch (a[i]) {
      case '--port': opts.port = Number(next()); break;
      case '--token': opts.tokens.push(next()); break;
      case '--agent-id': opts.agentId = next(); break;
      case '--not-capable': for (const n of next().split(',')) if (n) opts.notCapable.add(n); break;
      case '--fail-status': opts.failStatus = Number(next()); break;
      case '--fail-first': opts.failCount = Number(next()); break;
      case '--delay-ms': opts.delayMs = Number(next()); break;
      case '--webhook-url': opts.webhookUrl = next(); break;
      case '--webhook-secret': opts.webhookSecret = next(); break;
      case '--auto-events': opts.autoEvents = next().split(',').filter(Boolean); break;
      case '--no-record': opts.record = false; break;
      case '--tls-cert': opts.tlsCert = next(); break;
      case '--tls-key': opts.tlsKey = next(); break;
      default:
        process.stderr.write(`rbm_server: unknown option ${a[i]}\n`);
        process.exit(2);
    }
  }
  if (opts.tokens.length === 0) opts.tokens.push('test-token');
  if (!opts.failStatus) opts.failStatus = 429;
}

// ---- state -------------------------------------------------------------------
let messages = [];             // accepted messages, arrival order
let byId = new Map();          // messageId -> message
const apiSockets = new Set();  // open connections that carried API calls
let stats;
function resetStats() {
  stats = {
    api_connections: 0, open_api_connections: 0, max_open_api_connections: 0, api_requests: 0,
    creates: 0, duplicates: 0, injected_failures: 0, rejected: 0, deletes: 0, revoked: 0,
    capability_requests: 0, webhooks_pushed: 0, webhook_statuses: [],
  };
}
resetStats();

// ---- helpers -----------------------------------------------------------------
const STATUS = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE',
};
function send(res, code, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(code, {'Content-Type': 'application/json; charset=UTF-8',
                       'Content-Length': Buffer.byteLength(body)});
  res.end(body);
}
function apiError(res, code, message) {
  send(res, code, {error: {code, message, status: STATUS[code] || 'UNKNOWN'}});
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
// A slow carrier, on request (--delay-ms, /_test/config delay_ms): each API
// answer is held back this long. Peer behaviour under test, not a test's wait.
const holdBack = (ms) => new Promise((r) => setTimeout(r, ms));
const chars = (s) => [...s].length;

// ---- AgentMessage validation (returns an error text or '') --------------------
class Invalid extends Error {}
function fail(msg) { throw new Invalid(msg); }
function checkFields(obj, where, allowed) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(`${where}: expected an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      fail(`Invalid JSON payload received. Unknown name "${k}" at '${where}': Cannot find field.`);
    }
  }
}
function str(v, where, max, required) {
  if (v === undefined) { if (required) fail(`${where} is required`); return; }
  if (typeof v !== 'string') fail(`${where}: expected a string`);
  if (required && v.length === 0) fail(`${where} must not be empty`);
  if (max && chars(v) > max) fail(`${where} exceeds ${max} characters`);
}
function oneOf(obj, where, names) {
  const present = names.filter((n) => obj[n] !== undefined);
  if (present.length !== 1) fail(`${where}: exactly one of ${names.join(', ')} must be set`);
  return present[0];
}
function checkUrl(u, where) {
  str(u, where, 2048, true);
  if (!/^https?:\/\//.test(u)) fail(`${where}: not an http(s) URL`);
}
function checkSuggestion(s, where) {
  checkFields(s, where, ['reply', 'action']);
  const kind = oneOf(s, where, ['reply', 'action']);
  const v = s[kind];
  if (kind === 'reply') {
    checkFields(v, `${where}.reply`, ['text', 'postbackData']);
  } else {
    checkFields(v, `${where}.action`, ['text', 'postbackData', 'fallbackUrl', 'dialAction',
      'viewLocationAction', 'createCalendarEventAction', 'openUrlAction', 'shareLocationAction',
      'composeAction']);
    const act = oneOf(v, `${where}.action`, ['dialAction', 'viewLocationAction',
      'createCalendarEventAction', 'openUrlAction', 'shareLocationAction', 'composeAction']);
    if (act === 'openUrlAction') {
      checkFields(v.openUrlAction, `${where}.action.openUrlAction`, ['url', 'application', 'webviewViewMode', 'description']);
      checkUrl(v.openUrlAction.url, `${where}.action.openUrlAction.url`);
    } else if (act === 'dialAction') {
      checkFields(v.dialAction, `${where}.action.dialAction`, ['phoneNumber']);
      str(v.dialAction.phoneNumber, `${where}.action.dialAction.phoneNumber`, 0, true);
    }
  }
  str(v.text, `${where}.${kind}.text`, 25, true);
  str(v.postbackData, `${where}.${kind}.postbackData`, 2048, true);
}
function checkSuggestions(list, where, max) {
  if (list === undefined) return;
  if (!Array.isArray(list)) fail(`${where}: expected a list`);
  if (list.length > max) fail(`${where}: at most ${max} suggestions`);
  list.forEach((s, i) => checkSuggestion(s, `${where}[${i}]`));
}
function checkCardContent(c, where) {
  checkFields(c, where, ['title', 'description', 'media', 'suggestions']);
  str(c.title, `${where}.title`, 200);
  str(c.description, `${where}.description`, 2000);
  if (c.media !== undefined) {
    checkFields(c.media, `${where}.media`, ['height', 'fileUrl', 'uploadedRbmFile', 'contentInfo']);
    if (!['SHORT', 'MEDIUM', 'TALL'].includes(c.media.height)) fail(`${where}.media.height: invalid value`);
    const src = oneOf(c.media, `${where}.media`, ['fileUrl', 'uploadedRbmFile', 'contentInfo']);
    if (src === 'contentInfo') {
      checkFields(c.media.contentInfo, `${where}.media.contentInfo`, ['fileUrl', 'thumbnailUrl', 'forceRefresh']);
      checkUrl(c.media.contentInfo.fileUrl, `${where}.media.contentInfo.fileUrl`);
    }
  }
  if (c.title === undefined && c.description === undefined && c.media === undefined) {
    fail(`${where}: needs a title, a description or media`);
  }
  checkSuggestions(c.suggestions, `${where}.suggestions`, 4);
}
function validateAgentMessage(m) {
  checkFields(m, 'agent_message', ['contentMessage', 'messageTrafficType', 'ttl', 'expireTime']);
  if (m.ttl !== undefined && m.expireTime !== undefined) fail('agent_message: only one of ttl, expireTime');
  if (m.ttl !== undefined && !/^\d+(\.\d{1,9})?s$/.test(m.ttl)) fail(`agent_message.ttl: invalid duration`);
  const c = m.contentMessage;
  if (c === undefined) fail('agent_message.content_message is required');
  checkFields(c, 'agent_message.content_message',
    ['text', 'fileName', 'uploadedRbmFile', 'richCard', 'contentInfo', 'suggestions']);
  const kind = oneOf(c, 'agent_message.content_message',
    ['text', 'fileName', 'uploadedRbmFile', 'richCard', 'contentInfo']);
  if (kind === 'text') str(c.text, 'agent_message.content_message.text', 3072, true);
  if (kind === 'richCard') {
    checkFields(c.richCard, 'rich_card', ['standaloneCard', 'carouselCard']);
    const k = oneOf(c.richCard, 'rich_card', ['standaloneCard', 'carouselCard']);
    if (k === 'standaloneCard') {
      const s = c.richCard.standaloneCard;
      checkFields(s, 'standalone_card', ['cardOrientation', 'thumbnailImageAlignment', 'cardContent']);
      if (!['HORIZONTAL', 'VERTICAL'].includes(s.cardOrientation)) fail('standalone_card.card_orientation: invalid value');
      if (s.cardOrientation === 'HORIZONTAL' && !['LEFT', 'RIGHT'].includes(s.thumbnailImageAlignment)) {
        fail('standalone_card.thumbnail_image_alignment is required for HORIZONTAL cards');
      }
      if (s.cardContent === undefined) fail('standalone_card.card_content is required');
      checkCardContent(s.cardContent, 'standalone_card.card_content');
    }
  }
  checkSuggestions(c.suggestions, 'agent_message.content_message.suggestions', 11);
}

// ---- webhooks (Pub/Sub push) -----------------------------------------------
const webhookAgent = new http.Agent({keepAlive: true, maxSockets: 4});
let pubsubSeq = 0;
function pushWebhook(payload, {url, secret, signature} = {}) {
  url = url || opts.webhookUrl;
  secret = secret || opts.webhookSecret;
  if (!url) return Promise.resolve({status: 0, error: 'no webhook url'});
  const data = JSON.stringify(payload);
  const body = JSON.stringify({
    message: {data: Buffer.from(data).toString('base64'), messageId: String(++pubsubSeq),
              publishTime: new Date().toISOString()},
    subscription: 'projects/rbm-test/subscriptions/rbm-agent',
  });
  let sig = crypto.createHmac('sha512', secret).update(data).digest('base64');
  if (signature === 'bad') sig = crypto.createHmac('sha512', secret + 'x').update(data).digest('base64');
  const headers = {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)};
  if (signature !== 'none') headers['X-Goog-Signature'] = sig;
  return new Promise((resolve) => {
    const req = http.request(url, {method: 'POST', headers, agent: webhookAgent}, (res) => {
      res.resume();
      res.on('end', () => {
        stats.webhooks_pushed++;
        stats.webhook_statuses.push(res.statusCode);
        resolve({status: res.statusCode});
      });
    });
    req.on('error', (e) => resolve({status: 0, error: String(e.message)}));
    req.end(body);
  });
}
function eventPayload(type, m, extra = {}) {
  const base = {senderPhoneNumber: m.phone, sendTime: new Date().toISOString(), agentId: m.agentId || opts.agentId || 'test-agent'};
  if (type === 'TEXT') return {...base, messageId: extra.eventId || crypto.randomUUID(), text: extra.text ?? 'hello'};
  if (type === 'SUGGESTION') {
    return {...base, messageId: extra.eventId || crypto.randomUUID(),
            suggestionResponse: {postbackData: extra.postbackData ?? 'yes', text: extra.text ?? 'Yes', type: 'REPLY'}};
  }
  const ev = {...base, eventType: type, eventId: extra.eventId || crypto.randomUUID()};
  if (type !== 'IS_TYPING') ev.messageId = m.messageId;
  return ev;
}
async function autoEvents(m) {
  for (const e of opts.autoEvents) {
    const type = e.toUpperCase();
    if (type === 'DELIVERED') m.delivered = true;
    await pushWebhook(eventPayload(type, m));
  }
}

// ---- API ---------------------------------------------------------------------
function authorised(req) {
  const h = req.headers['authorization'] || '';
  return h.startsWith('Bearer ') && opts.tokens.includes(h.slice(7));
}

async function api(req, res, url) {
  stats.api_requests++;
  if (!req.socket.rbmApi) {
    req.socket.rbmApi = true;
    stats.api_connections++;
    stats.open_api_connections++;
    stats.max_open_api_connections = Math.max(stats.max_open_api_connections, stats.open_api_connections);
    apiSockets.add(req.socket);
    req.socket.on('close', () => {
      stats.open_api_connections--;
      apiSockets.delete(req.socket);
    });
  }
  const body = await readBody(req);
  if (opts.delayMs > 0) await holdBack(opts.delayMs);
  if (!authorised(req)) return apiError(res, 401, 'Request had invalid authentication credentials.');
  const agentId = url.searchParams.get('agentId') || '';
  if (opts.agentId && agentId !== opts.agentId) return apiError(res, 403, 'The caller does not have permission');

  let m;
  if ((m = /^\/v1\/phones\/([^/]+)\/agentMessages$/.exec(url.pathname)) && req.method === 'POST') {
    const phone = decodeURIComponent(m[1]);
    if (opts.failCount > 0) {
      opts.failCount--;
      stats.injected_failures++;
      return apiError(res, opts.failStatus, opts.failStatus === 429
        ? 'Quota exceeded for quota metric \'Requests\'.' : 'Internal error encountered.');
    }
    const messageId = url.searchParams.get('messageId');
    if (!messageId) return apiError(res, 400, 'messageId is required');
    let msg;
    try {
      msg = JSON.parse(body);
      validateAgentMessage(msg);
    } catch (e) {
      stats.rejected++;
      return apiError(res, 400, e instanceof Invalid ? e.message : 'Invalid JSON payload received.');
    }
    if (!/^\+[0-9]{2,15}$/.test(phone)) return apiError(res, 400, 'Invalid phone number.');
    if (opts.notCapable.has(phone)) return apiError(res, 404, 'Requested entity was not found.');
    if (byId.has(messageId)) {
      stats.duplicates++;
      return apiError(res, 409, `Message with ID ${messageId} already exists.`);
    }
    stats.creates++;
    const sendTime = new Date().toISOString();
    const rec = {messageId, phone, agentId, sendTime, delivered: false, revoked: false};
    if (opts.record) {
      rec.body = msg;
      rec.authorization = req.headers['authorization'];
      messages.push(rec);
    }
    byId.set(messageId, rec);
    send(res, 200, {name: `phones/${phone}/agentMessages/${messageId}`, sendTime,
                    contentMessage: msg.contentMessage, ...(msg.ttl ? {ttl: msg.ttl} : {})});
    if (opts.autoEvents.length > 0) autoEvents(rec);
    return;
  }
  if ((m = /^\/v1\/phones\/([^/]+)\/agentMessages\/([^/]+)$/.exec(url.pathname)) && req.method === 'DELETE') {
    stats.deletes++;
    const rec = byId.get(decodeURIComponent(m[2]));
    if (!rec || rec.delivered || rec.revoked) return apiError(res, 404, 'Requested entity was not found.');
    rec.revoked = true;
    stats.revoked++;
    return send(res, 200, {});
  }
  if ((m = /^\/v1\/phones\/([^/]+)\/capabilities$/.exec(url.pathname)) && req.method === 'GET') {
    stats.capability_requests++;
    if (!url.searchParams.get('requestId')) return apiError(res, 400, 'requestId is required');
    const phone = decodeURIComponent(m[1]);
    if (opts.notCapable.has(phone)) return apiError(res, 404, 'Requested entity was not found.');
    return send(res, 200, {features: ['RICHCARD_STANDALONE', 'RICHCARD_CAROUSEL', 'ACTION_CREATE_CALENDAR_EVENT',
                                      'ACTION_DIAL', 'ACTION_OPEN_URL', 'ACTION_SHARE_LOCATION', 'ACTION_VIEW_LOCATION']});
  }
  return apiError(res, 404, 'Method not found.');
}

// ---- test control -----------------------------------------------------------
async function control(req, res, url) {
  const body = req.method === 'POST' ? await readBody(req) : '';
  const input = body ? JSON.parse(body) : {};
  switch (url.pathname) {
    case '/_test/messages': return send(res, 200, messages);
    case '/_test/stats': return send(res, 200, stats);
    case '/_test/reset':
      messages = [];
      byId = new Map();
      resetStats();
      return send(res, 200, {});
    case '/_test/config':
      if (input.fail) { opts.failStatus = input.fail.status; opts.failCount = input.fail.count; }
      if (input.delay_ms !== undefined) opts.delayMs = input.delay_ms;
      if (input.not_capable) opts.notCapable = new Set(input.not_capable);
      if (input.tokens) opts.tokens = input.tokens;
      if (input.auto_events) opts.autoEvents = input.auto_events;
      if (input.webhook_url !== undefined) opts.webhookUrl = input.webhook_url;
      if (input.webhook_secret !== undefined) opts.webhookSecret = input.webhook_secret;
      return send(res, 200, {});
    case '/_test/drop_connections':  // as a server closing idle keep-alive connections does
      for (const s of apiSockets) s.destroy();
      return send(res, 200, {dropped: apiSockets.size});
    case '/_test/push': {
      const type = (input.type || 'DELIVERED').toUpperCase();
      const rec = byId.get(input.messageId) ||
                  {messageId: input.messageId || '', phone: input.phone || '+15550000000', agentId: ''};
      if (input.phone) rec.phone = input.phone;
      if (type === 'DELIVERED' && byId.has(rec.messageId)) rec.delivered = true;
      const eventId = input.eventId || crypto.randomUUID();
      const payload = eventPayload(type, rec, {...input, eventId});
      const r = await pushWebhook(payload, {url: input.url, secret: input.secret, signature: input.signature});
      return send(res, 200, {...r, eventId});
    }
    default: return send(res, 404, {error: 'unknown test endpoint'});
  }
}

const onRequest = (req, res) => {
  const url = new URL(req.url, 'http://x');
  const handler = url.pathname.startsWith('/_test/') ? control : api;
  handler(req, res, url).catch((e) => {
    if (!res.headersSent) apiError(res, 500, 'Internal error encountered.');
    process.stderr.write(`rbm_server: ${e.stack}\n`);
  });
};
const server = opts.tlsCert
  ? require('https').createServer({cert: require('fs').readFileSync(opts.tlsCert),
                                   key: require('fs').readFileSync(opts.tlsKey)}, onRequest)
  : http.createServer(onRequest);
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
