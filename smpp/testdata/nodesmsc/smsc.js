// A small SMSC built on the npm package "smpp" (farhadi/node-smpp), an SMPP implementation campaignd
// did not write, for smpp/interop_test.go.
//
//   node smsc.js PORT [PING_MS]
//
// listens on 127.0.0.1:PORT (0 picks a free port) and, when PING_MS is given and not 0, sends its own
// enquire_link to every bound session each PING_MS milliseconds.
//
// Everything it does is reported on stdout as one JSON object per line; the first line is
// {"event":"listening","port":N}. It exits when stdin ends, so it never outlives the test that started it.
//
// Behaviour:
//   - bind_transceiver / bind_transmitter / bind_receiver with system_id "campaignd" and password
//     "secret"; anything else gets ESME_RINVPASWD (or ESME_RINVSYSID) and the connection is closed.
//   - enquire_link is answered (and reported); the enquire_link_resp to the SMSC's own enquire_link
//     (see PING_MS) is reported.
//   - submit_sm gets a message_id made of 'a' + a hex counter (so the id has hex letters) and, when
//     registered_delivery asks for it, a delivery receipt ~50 ms later: deliver_sm with esm_class 0x04,
//     the standard text, and the receipted_message_id / message_state TLVs. The receipt goes to a
//     session of the same system_id that may receive (a transceiver, or the receiver of a pair), and is
//     queued until one binds. Each part of a concatenated message gets its own receipt.
//   - The receipt text's id is the decimal form of the id (as many SMSCs write it) while
//     receipted_message_id carries the hex id in upper case, so that both paths of the client's id
//     normalisation are exercised. The ids carry a hex letter ('a' + counter): an id of hex digits
//     0-9 only reads as decimal in NormalizeID (a documented ambiguity), so its two forms would differ.
//
// Quirks of node-smpp 0.5.1 (worked around here, or harmless):
//   - It answers nothing by itself on the server side: binds, enquire_link, unbind and unknown commands
//     are answered below.
//   - Left to pick data_coding for a text short_message it labels GSM 03.38 text as 0x01 (IA5). The
//     receipt is therefore passed as raw ASCII bytes with data_coding 0x00 set explicitly.
//   - A response with a non-zero command_status is sent without a body (so a refused bind_resp has no
//     system_id), which SMPP 3.4 allows.
'use strict';

const smpp = require('smpp');

const SYSTEM_ID = 'campaignd';
const PASSWORD = 'secret';
const RECEIPT_DELAY_MS = 50;
const port = Number(process.argv[2] || 0);
const pingMs = Number(process.argv[3] || 0);
let counter = 0;
let sessionCounter = 0;
const pending = []; // receipts waiting for a session that can receive them

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function smppDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function canReceive(s) {
  return s.bound === 'transceiver' || s.bound === 'receiver';
}

function receiverFor(systemId) {
  const all = server.sessions.filter((s) => s.systemId === systemId && canReceive(s));
  return all.length ? all[all.length - 1] : null;
}

function sendReceipt(r) {
  const s = receiverFor(r.systemId);
  if (!s) {
    pending.push(r);
    return;
  }
  const done = smppDate(new Date());
  const text = 'id:' + BigInt('0x' + r.id).toString(10) + ' sub:001 dlvrd:001 submit date:' + r.submitDate +
    ' done date:' + done + ' stat:DELIVRD err:000 text:' + r.snippet;
  s.deliver_sm({
    source_addr_ton: r.destTon,
    source_addr_npi: r.destNpi,
    source_addr: r.dest,
    dest_addr_ton: r.sourceTon,
    dest_addr_npi: r.sourceNpi,
    destination_addr: r.source,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    data_coding: 0x00,
    short_message: Buffer.from(text, 'ascii'),
    receipted_message_id: r.id.toUpperCase(),
    message_state: smpp.MESSAGE_STATE.DELIVERED,
  }, (resp) => {
    log({ event: 'receipt_resp', session: s.n, id: r.id, status: resp.command_status });
    if (resp.command_status !== 0) {
      setTimeout(() => sendReceipt(r), RECEIPT_DELAY_MS); // the ESME asked for redelivery
    }
  });
  log({ event: 'receipt_sent', session: s.n, bind: s.bound, id: r.id, text });
}

function flushPending() {
  const queued = pending.splice(0);
  for (const r of queued) {
    sendReceipt(r);
  }
}

function onBind(session, pdu, kind) {
  const sid = pdu.system_id;
  let status = 0;
  if (sid !== SYSTEM_ID) {
    status = smpp.ESME_RINVSYSID;
  } else if (pdu.password !== PASSWORD) {
    status = smpp.ESME_RINVPASWD;
  } else if (session.bound) {
    status = smpp.ESME_RALYBND;
  }
  log({
    event: 'bind', session: session.n, kind, system_id: sid, interface_version: pdu.interface_version,
    status,
  });
  if (status !== 0) {
    session.send(pdu.response({ command_status: status }), () => session.close());
    return;
  }
  session.bound = kind;
  session.systemId = sid;
  session.send(pdu.response({ system_id: 'nodesmsc' }));
  if (canReceive(session)) {
    flushPending();
  }
}

function hex(b) {
  return Buffer.isBuffer(b) ? b.toString('hex') : null;
}

function onSubmit(session, pdu) {
  if (session.bound !== 'transceiver' && session.bound !== 'transmitter') {
    session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
    return;
  }
  counter++;
  const id = 'a' + counter.toString(16).padStart(7, '0');
  const sm = pdu.short_message || {};
  const udh = Array.isArray(sm.udh) ? sm.udh.map(hex) : null;
  log({
    event: 'submit', session: session.n, bind: session.bound, id,
    source: pdu.source_addr, source_ton: pdu.source_addr_ton, source_npi: pdu.source_addr_npi,
    dest: pdu.destination_addr, dest_ton: pdu.dest_addr_ton, dest_npi: pdu.dest_addr_npi,
    esm_class: pdu.esm_class, data_coding: pdu.data_coding, registered_delivery: pdu.registered_delivery,
    udh, text: typeof sm.message === 'string' ? sm.message : null,
  });
  session.send(pdu.response({ message_id: id }));
  if ((pdu.registered_delivery & 0x03) !== 0) {
    const text = typeof sm.message === 'string' ? sm.message : '';
    const r = {
      systemId: session.systemId, id, submitDate: smppDate(new Date()),
      // The text: field is informational; keep it ASCII so the receipt stays GSM/ASCII-safe.
      snippet: text.slice(0, 20).replace(/[^\x20-\x7e]/g, '?'),
      source: pdu.source_addr, sourceTon: pdu.source_addr_ton, sourceNpi: pdu.source_addr_npi,
      dest: pdu.destination_addr, destTon: pdu.dest_addr_ton, destNpi: pdu.dest_addr_npi,
    };
    setTimeout(() => sendReceipt(r), RECEIPT_DELAY_MS);
  }
}

const server = smpp.createServer((session) => {
  session.n = ++sessionCounter;
  session.bound = null;
  log({ event: 'connect', session: session.n });

  session.on('pdu', (pdu) => {
    switch (pdu.command) {
      case 'bind_transceiver':
        return onBind(session, pdu, 'transceiver');
      case 'bind_transmitter':
        return onBind(session, pdu, 'transmitter');
      case 'bind_receiver':
        return onBind(session, pdu, 'receiver');
      case 'enquire_link':
        log({ event: 'enquire_link', session: session.n });
        return session.send(pdu.response());
      case 'submit_sm':
        if (!session.bound) {
          return session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
        }
        return onSubmit(session, pdu);
      case 'unbind':
        log({ event: 'unbind', session: session.n });
        session.bound = null;
        return session.send(pdu.response(), () => session.close());
      case 'enquire_link_resp':
        return log({ event: 'enquire_link_resp', session: session.n, status: pdu.command_status });
      default:
        if (!pdu.isResponse()) {
          log({ event: 'unsupported', session: session.n, command: pdu.command });
          // generic_nack for unknown commands, an ESME_RINVCMDID response for known ones.
          session.send(pdu.response({ command_status: smpp.ESME_RINVCMDID }));
        }
    }
  });
  session.on('error', (err) => log({ event: 'error', session: session.n, error: String(err) }));
  session.on('close', () => {
    session.bound = null;
    log({ event: 'close', session: session.n });
  });
});

if (pingMs > 0) {
  setInterval(() => {
    for (const s of server.sessions) {
      if (s.bound) {
        s.enquire_link();
      }
    }
  }, pingMs);
}

server.on('error', (err) => {
  log({ event: 'fatal', error: String(err) });
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  log({ event: 'listening', port: server.address().port });
});

// Mobile-originated messages for tests (added for the opt-out tests): each line on stdin may be a JSON
// command {"cmd":"mo","from":"...","to":"...","data_coding":0|8,"hex":"<payload bytes>","payload":false}.
// The MO is a deliver_sm with esm_class 0 sent to the last session that may receive (any system_id),
// the bytes in short_message, or in a message_payload TLV when "payload" is true; it is reported as
// mo_sent, and its deliver_sm_resp as mo_resp. A refused MO is delivered again, as receipts are.
let stdinBuf = '';
function sendMO(mo) {
  const all = server.sessions.filter(canReceive);
  const s = all.length ? all[all.length - 1] : null;
  if (!s) {
    setTimeout(() => sendMO(mo), RECEIPT_DELAY_MS);
    return;
  }
  const body = Buffer.from(mo.hex, 'hex');
  const pdu = {
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: mo.from,
    dest_addr_ton: 0,
    dest_addr_npi: 1,
    destination_addr: mo.to,
    esm_class: 0,
    data_coding: mo.data_coding,
  };
  if (mo.payload) {
    pdu.short_message = Buffer.alloc(0);
    pdu.message_payload = body;
  } else {
    pdu.short_message = body;
  }
  s.deliver_sm(pdu, (resp) => {
    log({ event: 'mo_resp', session: s.n, source: mo.from, status: resp.command_status });
    if (resp.command_status !== 0) {
      setTimeout(() => sendMO(mo), RECEIPT_DELAY_MS);
    }
  });
  log({ event: 'mo_sent', session: s.n, bind: s.bound, source: mo.from, data_coding: mo.data_coding });
}
process.stdin.on('data', (chunk) => {
  stdinBuf += chunk.toString('utf8');
  let i;
  while ((i = stdinBuf.indexOf('\n')) >= 0) {
    const line = stdinBuf.slice(0, i).trim();
    stdinBuf = stdinBuf.slice(i + 1);
    if (!line) continue;
    try {
      const c = JSON.parse(line);
      if (c.cmd === 'mo') sendMO(c);
    } catch (err) {
      log({ event: 'bad_command', error: String(err), line });
    }
  }
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
