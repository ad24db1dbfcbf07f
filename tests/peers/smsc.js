#!/usr/bin/env node
// A test SMSC for sms_smpp: the `smpp` npm package's server (0.5.x) bound to
// 127.0.0.1 on a free port. It prints the port as its first stdout line and
// records what it sees as JSON lines (--log FILE, else stdout), each with a
// monotonic timestamp `t` in milliseconds.
//
// Flags (all optional):
//   --system-id ID --password PW   credentials a bind must give (else 0x0e / 0x0f)
//   --throttle N                   answer ESME_RTHROTTLED (0x58) to the first N submits
//   --queue-full N                 answer ESME_RMSGQFUL (0x14) to the next N submits
//   --fail-dest DIGITS[=STATUS]    answer STATUS (default 0x0b) to submits for DIGITS (repeatable)
//   --drop-after N                 close the connection on the N-th submit, unanswered (once)
//   --delay-ms N                   answer submits after N ms
//   --receipts tlv|text|both       send a delivery receipt for each accepted submit
//   --receipt-stat WORD            the receipt's stat (default DELIVRD)
//   --undeliv-dest DIGITS          receipts for DIGITS say UNDELIV (repeatable)
//   --quiet                        do not log each submit (benchmarks); see the `stats` command
//   --log FILE                     where the JSON lines go
//
// Commands on stdin, one JSON object per line:
//   {"cmd":"mo","from":"8190...","from_ton":1,"to":"12345","text":"...","coding":"gsm|ucs2|latin1","parts":N}
//   {"cmd":"receipt","id":"...","stat":"UNDELIV","form":"tlv|text|both"}
//   {"cmd":"enquire_link"}  send enquire_link; logs the enquire_link_resp
//   {"cmd":"drop"}          close every connection
//   {"cmd":"set","delay_ms":N,"throttle":N,...}
//   {"cmd":"reset"}         zero the counters that `stats` reports
//   {"cmd":"stats"}         logs {"event":"stats","submits":N,"first_t":..,"last_t":..}
'use strict';

const path = require('path');
const fs = require('fs');
const readline = require('readline');
const smpp = require(path.join(__dirname, '..', '..', 'node_modules', 'smpp'));

// Keep submit_sm's short_message as raw bytes: the test checks the octets
// and the UDH itself, and this peer decodes the text on its own below.
delete smpp.commands.submit_sm.params.short_message.filter;

const opts = {
  systemId: null, password: null, throttle: 0, queueFull: 0, failDest: {}, dropAfter: 0,
  delayMs: 0, receipts: null, receiptStat: 'DELIVRD', undelivDest: {}, quiet: false, log: null,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
  const a = argv[i], v = () => argv[++i];
  if (a === '--system-id') opts.systemId = v();
  else if (a === '--password') opts.password = v();
  else if (a === '--throttle') opts.throttle = Number(v());
  else if (a === '--queue-full') opts.queueFull = Number(v());
  else if (a === '--fail-dest') {
    const [d, s] = v().split('=');
    opts.failDest[d] = s ? Number(s) : 0x0b;
  } else if (a === '--drop-after') opts.dropAfter = Number(v());
  else if (a === '--delay-ms') opts.delayMs = Number(v());
  else if (a === '--receipts') opts.receipts = v();
  else if (a === '--receipt-stat') opts.receiptStat = v();
  else if (a === '--undeliv-dest') opts.undelivDest[v()] = true;
  else if (a === '--quiet') opts.quiet = true;
  else if (a === '--log') opts.log = v();
  else {
    process.stderr.write('smsc.js: unknown flag ' + a + '\n');
    process.exit(2);
  }
}

// Written synchronously: a record is in the file before the PDU it
// describes is answered, so a test that saw the answer can read the record.
const logFd = opts.log ? fs.openSync(opts.log, 'a') : null;
const now = () => Number(process.hrtime.bigint()) / 1e6;
function record(obj) {
  obj.t = now();
  const line = JSON.stringify(obj) + '\n';
  if (logFd !== null) fs.writeSync(logFd, line);
  else process.stdout.write(line);
}

function decodeText(dataCoding, bytes) {
  if (dataCoding === 0x08) {
    const swapped = Buffer.from(bytes);
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  if (dataCoding === 0x00) return smpp.gsmCoder.decode(bytes, 0x00);
  return bytes.toString('latin1');
}

function encodeText(coding, text) {
  if (coding === 'ucs2') {
    const b = Buffer.from(text, 'utf16le');
    b.swap16();
    return {dc: 0x08, bytes: b};
  }
  if (coding === 'latin1') return {dc: 0x03, bytes: Buffer.from(text, 'latin1')};
  return {dc: 0x00, bytes: smpp.gsmCoder.encode(text, 0x00)};
}

let submits = 0, accepted = 0, firstT = 0, lastT = 0, nextId = 0x1000, maxOutstanding = 0;
let dropArmed = opts.dropAfter > 0;
const sessions = new Set();

function sendReceipt(session, id, stat, form, dest) {
  const text = 'id:' + id + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
      ' submit date:2601011200 done date:2601011201 stat:' + stat + ' err:' +
      (stat === 'DELIVRD' ? '000' : '001') + ' text:';
  const states = {DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8, ENROUTE: 1};
  const pdu = {
    source_addr: dest || '', source_addr_ton: 1, source_addr_npi: 1,
    destination_addr: 'relay', esm_class: 0x04, data_coding: 0x00,
    short_message: form === 'tlv' ? Buffer.alloc(0) : Buffer.from(text, 'ascii'),
  };
  if (form !== 'text') {
    pdu.receipted_message_id = id;
    pdu.message_state = states[stat] || 7;
  }
  session.deliver_sm(pdu, (resp) => {
    record({event: 'deliver_sm_resp', kind: 'receipt', id: id, status: resp.command_status});
  });
}

function sendMo(session, cmd) {
  const {dc, bytes} = encodeText(cmd.coding || 'gsm', cmd.text || '');
  const parts = Math.max(1, cmd.parts || 1);
  const per = Math.ceil(bytes.length / parts / (dc === 0x08 ? 2 : 1)) * (dc === 0x08 ? 2 : 1);
  const ref = (cmd.ref || 0x42) & 0xff;
  for (let p = 0; p < parts; ++p) {
    const chunk = bytes.slice(p * per, (p + 1) * per);
    const sm = parts > 1 ? Buffer.concat([Buffer.from([5, 0, 3, ref, parts, p + 1]), chunk]) : chunk;
    session.deliver_sm({
      source_addr: cmd.from, source_addr_ton: cmd.from_ton === undefined ? 1 : cmd.from_ton,
      source_addr_npi: 1, destination_addr: cmd.to || '', esm_class: parts > 1 ? 0x40 : 0,
      data_coding: dc, short_message: sm,
    }, (resp) => record({event: 'deliver_sm_resp', kind: 'mo', status: resp.command_status}));
  }
}

function onSubmit(session, pdu) {
  ++submits;
  const t = now();
  if (!firstT) firstT = t;
  lastT = t;
  session.outstanding = (session.outstanding || 0) + 1;
  maxOutstanding = Math.max(maxOutstanding, session.outstanding);
  const sm = pdu.short_message || Buffer.alloc(0);
  let udh = Buffer.alloc(0), body = sm;
  if ((pdu.esm_class & 0x40) && sm.length > 0) {
    udh = sm.slice(0, sm[0] + 1);
    body = sm.slice(sm[0] + 1);
  }
  let status = 0;
  if (opts.throttle > 0) {
    --opts.throttle;
    status = 0x58;
  } else if (opts.queueFull > 0) {
    --opts.queueFull;
    status = 0x14;
  } else if (opts.failDest[pdu.destination_addr] !== undefined) {
    status = opts.failDest[pdu.destination_addr];
  }
  const messageId = status === 0 ? (nextId++).toString(16) : '';
  if (!opts.quiet) {
    record({
      event: 'submit', seq: pdu.sequence_number, system_id: session.systemId,
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi, destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class, data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery, sm_hex: sm.toString('hex'),
      udh_hex: udh.toString('hex'), text: decodeText(pdu.data_coding, body),
      outstanding: session.outstanding, max_outstanding: maxOutstanding, status: status,
      message_id: messageId,
    });
  }
  if (dropArmed && submits >= opts.dropAfter) {
    dropArmed = false;
    record({event: 'dropping', after: submits});
    session.socket.destroy();
    return;
  }
  const answer = () => {
    session.outstanding--;
    if (session.socket.destroyed) return;
    session.send(pdu.response({command_status: status, message_id: messageId}));
    if (status === 0) {
      ++accepted;
      if (opts.receipts) {
        const stat = opts.undelivDest[pdu.destination_addr] ? 'UNDELIV' : opts.receiptStat;
        sendReceipt(session, messageId, stat, opts.receipts, pdu.destination_addr);
      }
    }
  };
  if (opts.delayMs > 0) setTimeout(answer, opts.delayMs);
  else answer();
}

const server = smpp.createServer((session) => {
  sessions.add(session);
  session.on('bind_transceiver', (pdu) => {
    let status = 0;
    if (opts.systemId !== null && pdu.system_id !== opts.systemId) status = 0x0f;
    else if (opts.password !== null && pdu.password !== opts.password) status = 0x0e;
    record({event: 'bind', system_id: pdu.system_id, system_type: pdu.system_type,
            interface_version: pdu.interface_version, ok: status === 0, status: status});
    session.send(pdu.response({command_status: status, system_id: 'smsc-js'}));
    if (status === 0) {
      session.systemId = pdu.system_id;
      session.bound = true;
    }
  });
  session.on('submit_sm', (pdu) => {
    if (!session.bound) {
      session.send(pdu.response({command_status: 0x04}));
      return;
    }
    onSubmit(session, pdu);
  });
  session.on('enquire_link', (pdu) => {
    record({event: 'enquire_link'});
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    record({event: 'unbind'});
    session.send(pdu.response());
    session.close();
  });
  session.on('generic_nack', (pdu) => record({event: 'generic_nack', status: pdu.command_status}));
  session.on('close', () => {
    sessions.delete(session);
    record({event: 'close'});
  });
  session.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n');
});

readline.createInterface({input: process.stdin}).on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    return;
  }
  const bound = [...sessions].filter((s) => s.bound);
  if (cmd.cmd === 'mo') {
    bound.forEach((s) => sendMo(s, cmd));
  } else if (cmd.cmd === 'receipt') {
    bound.forEach((s) => sendReceipt(s, cmd.id, cmd.stat || 'DELIVRD', cmd.form || 'both', ''));
  } else if (cmd.cmd === 'enquire_link') {
    bound.forEach((s) => s.enquire_link((resp) => record({event: 'enquire_link_resp', status: resp.command_status})));
  } else if (cmd.cmd === 'drop') {
    sessions.forEach((s) => s.socket.destroy());
  } else if (cmd.cmd === 'set') {
    if (cmd.delay_ms !== undefined) opts.delayMs = cmd.delay_ms;
    if (cmd.throttle !== undefined) opts.throttle = cmd.throttle;
    if (cmd.queue_full !== undefined) opts.queueFull = cmd.queue_full;
    if (cmd.receipts !== undefined) opts.receipts = cmd.receipts;
  } else if (cmd.cmd === 'reset') {
    submits = accepted = firstT = lastT = maxOutstanding = 0;
  } else if (cmd.cmd === 'stats') {
    record({event: 'stats', submits: submits, accepted: accepted, first_t: firstT, last_t: lastT,
            max_outstanding: maxOutstanding});
    return;
  }
  record({event: 'cmd_done', cmd: cmd.cmd});
});
process.stdin.on('end', () => process.exit(0));
