#!/usr/bin/python3
"""A real SMTP server on loopback for email_smtp's integration tests.

Built on Debian's aiosmtpd (run with /usr/bin/python3). Binds 127.0.0.1 on a
free port and prints the port as its first stdout line. Every message it
receives is stored in --dir as msg-<seq>.eml (the raw data) and
msg-<seq>.json (envelope, connection, TLS/AUTH state, whether its Message-ID
was seen before, and the message parsed back with python's email package).
A careful receiver: a message whose Message-ID it already has is accepted
and recorded as a duplicate. stats.json holds the counters (connections,
messages, duplicates, the most DATA commands in progress at once).

Options shape the server the test needs: STARTTLS (--tls-cert/--tls-key),
AUTH (--auth user:password, --auth-mechanism, --auth-without-tls),
PIPELINING (--pipelining; aiosmtpd does not advertise it by itself),
4xx for the first N messages (--tempfail-first), 5xx for one recipient
(--reject-rcpt), a connection dropped after the first message's body and
before the reply (--drop-first-data), a rendezvous that holds DATA replies
until N connections are in DATA at once (--data-barrier), and an old server
that answers EHLO with 502 (--no-ehlo).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def parse_message(raw):
    """The message as a reader sees it: decoded headers and decoded parts."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    defects = [str(d) for d in msg.defects]
    for part in msg.walk():
        defects += [str(d) for d in part.defects]
        if part.is_multipart():
            continue
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transfer_encoding": part.get("Content-Transfer-Encoding", ""),
            "body": part.get_content(),
        })
    headers = {}
    for name in msg.keys():
        headers[name.lower()] = str(msg[name])
    return {
        "content_type": msg.get_content_type(),
        "headers": headers,
        "parts": parts,
        "defects": defects,
    }


class State:
    def __init__(self, args):
        self.args = args
        self.connections = 0
        self.open_connections = 0
        self.messages = 0
        self.duplicates = 0
        self.in_data = 0
        self.max_in_data = 0
        self.message_ids = set()
        self.tempfails_left = args.tempfail_first
        self.drop_pending = args.drop_first_data
        self.barrier = asyncio.Event()

    def save(self):
        write_atomic(os.path.join(self.args.dir, "stats.json"), json.dumps({
            "connections": self.connections,
            "open_connections": self.open_connections,
            "messages": self.messages,
            "duplicates": self.duplicates,
            "max_in_data": self.max_in_data,
        }).encode())


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.state.args.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.state.args.reject_rcpt and address.lower() == self.state.args.reject_rcpt.lower():
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        st = self.state
        st.in_data += 1
        if st.in_data > st.max_in_data:
            st.max_in_data = st.in_data
            st.save()
        try:
            if st.args.data_barrier:
                if st.in_data >= st.args.data_barrier:
                    st.barrier.set()
                try:
                    await asyncio.wait_for(st.barrier.wait(), timeout=10)
                except asyncio.TimeoutError:
                    return "451 4.3.0 barrier not reached"
            if st.tempfails_left > 0:
                st.tempfails_left -= 1
                return "451 4.3.0 Temporary failure, please try again later"
            raw = envelope.original_content
            parsed = parse_message(raw)
            message_id = parsed["headers"].get("message-id", "")
            duplicate = message_id in st.message_ids
            st.message_ids.add(message_id)
            st.messages += 1
            if duplicate:
                st.duplicates += 1
            seq = st.messages
            base = os.path.join(st.args.dir, "msg-%05d" % seq)
            write_atomic(base + ".eml", raw)
            write_atomic(base + ".json", json.dumps({
                "seq": seq,
                "connection": server.connection_number,
                "tls": server._tls_protocol is not None,
                "authenticated": bool(session.authenticated),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "message_id": message_id,
                "duplicate": duplicate,
                "parsed": parsed,
            }).encode())
            st.save()
            if st.drop_pending:
                # The body arrived and is stored; the client never hears so.
                st.drop_pending = False
                server.transport.abort()
                return "250 never sent"
            return "250 2.0.0 Ok: queued as %05d" % seq
        finally:
            st.in_data -= 1


class Server(SMTP):
    """Counts connections; optionally an old server without EHLO."""

    def __init__(self, handler, state, **kw):
        super().__init__(handler, **kw)
        self.state = state
        self.connection_number = 0

    def connection_made(self, transport):
        # STARTTLS calls this again for the same connection: count once.
        if self.connection_number == 0:
            self.state.connections += 1
            self.state.open_connections += 1
            self.connection_number = self.state.connections
            self.state.save()
        super().connection_made(transport)

    def connection_lost(self, error):
        if self.connection_number != 0 and not getattr(self, "_lost", False):
            self._lost = True
            self.state.open_connections -= 1
            self.state.save()
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname):
        if self.state.args.no_ehlo:
            await self.push("502 5.5.2 Error: command not recognized")
            return
        await super().smtp_EHLO(hostname)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--auth", help="user:password; AUTH becomes required")
    p.add_argument("--auth-mechanism", choices=["PLAIN", "LOGIN"],
                   help="offer only this mechanism")
    p.add_argument("--auth-without-tls", action="store_true",
                   help="offer AUTH on a plain-text connection too")
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--tempfail-first", type=int, default=0)
    p.add_argument("--reject-rcpt")
    p.add_argument("--drop-first-data", action="store_true")
    p.add_argument("--data-barrier", type=int, default=0)
    p.add_argument("--no-ehlo", action="store_true")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    state = State(args)
    state.save()
    handler = Handler(state)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    kw = dict(hostname="peer.test", tls_context=tls_context, loop=loop,
              enable_SMTPUTF8=False, decode_data=False)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            # handled=False: aiosmtpd then answers 535 itself (its default,
            # handled=True, would leave the client without a reply).
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kw.update(authenticator=authenticator, auth_required=True,
                  auth_require_tls=not args.auth_without_tls)
        if args.auth_mechanism:
            kw["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN")
                                            if m != args.auth_mechanism]

    server = loop.run_until_complete(loop.create_server(
        lambda: Server(handler, state, **kw), host="127.0.0.1", port=0))
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
