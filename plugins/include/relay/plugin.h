/*
 * relay carrier plug-in ABI, version 1.
 *
 * A plug-in is a shared library that exports one symbol, `relay_plugin_entry`,
 * returning a table of function pointers. relay (the host) loads it with
 * dlopen, checks the table's ABI major version and size, and creates one
 * instance per configured (carrier, channel) connector.
 *
 * This header is pure C and depends on nothing but <stddef.h>/<stdint.h>, so a
 * carrier can build its plug-in with any compiler. See docs/plugins.md.
 *
 * Naming: `on_*` functions are implemented by the plug-in and called by the
 * host; `callback_*` functions are implemented by the host and called by the
 * plug-in.
 *
 * Memory: every pointer handed across the boundary is owned by the side that
 * allocated it and is valid only for the duration of the call, unless its
 * OWNERSHIP note says otherwise. Copy what you keep.
 *
 * Errors: no C++ exception may cross this boundary in either direction.
 */
#ifndef RELAY_PLUGIN_H
#define RELAY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_PLUGIN_ABI_MAJOR 1u
#define RELAY_PLUGIN_ABI_MINOR 1u
/* major in the high 16 bits, minor in the low 16 bits. The host refuses a
 * plug-in whose major differs from its own; minors only add fields at the end
 * of structs, which the reader detects through struct_size. */
#define RELAY_PLUGIN_ABI_VERSION ((RELAY_PLUGIN_ABI_MAJOR << 16) | RELAY_PLUGIN_ABI_MINOR)

/* The name of the one exported entry point. */
#define RELAY_PLUGIN_ENTRY_SYMBOL "relay_plugin_entry"

#if defined(_WIN32)
#define RELAY_PLUGIN_EXPORT __declspec(dllexport)
#else
#define RELAY_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* A borrowed byte string; not NUL-terminated. size 0 means absent/empty. */
typedef struct relay_str {
  const char* data;
  size_t size;
} relay_str;

/* One configuration entry of the connector (the keys under
 * carriers[].channels.<channel> in relay.yaml; nested maps are flattened with
 * dots, lists are given as JSON text). */
typedef struct relay_kv {
  relay_str key;
  relay_str value;
} relay_kv;

typedef enum relay_log_level {
  RELAY_LOG_DEBUG = 0,
  RELAY_LOG_INFO = 1,
  RELAY_LOG_WARN = 2,
  RELAY_LOG_ERROR = 3
} relay_log_level;

/* Outcome of one submit. RETRY: transient (throttled, connection lost,
 * 4xx SMTP); the host retries later with backoff. FAILED: permanent; the host
 * emits a `failed` event with the detail. */
typedef enum relay_submit_status {
  RELAY_SUBMIT_ACCEPTED = 0,
  RELAY_SUBMIT_RETRY = 1,
  RELAY_SUBMIT_FAILED = 2
} relay_submit_status;

/* Set on a message that relay may have submitted before (it was in flight
 * when relay stopped without recording its outcome). A plug-in whose carrier
 * does not de-duplicate on message_id should check its own records. */
#define RELAY_MESSAGE_MAY_BE_DUPLICATE 0x1u

/* One message to deliver. All strings are borrowed for the duration of
 * on_submit. content_json is the job's `content` object as JSON text
 * (text, subject, html, link; fields may be absent). */
typedef struct relay_message {
  uint32_t struct_size; /* sizeof(relay_message) of the host */
  uint32_t flags;       /* RELAY_MESSAGE_* */
  uint32_t attempt;     /* 1 for the first submit, 2 for the first retry, ... */
  uint32_t reserved;
  relay_str message_id; /* deterministic per (job, user, channel); carriers may de-duplicate on it */
  relay_str job_id;
  relay_str company_id;
  relay_str service_id; /* may be empty */
  relay_str user_id;
  relay_str carrier_id;
  relay_str channel; /* "rcs", "sms" or "email" */
  relay_str address; /* msisdn (E.164) for rcs/sms, mailbox for email */
  relay_str content_json;
} relay_message;

typedef enum relay_event_type {
  RELAY_EVENT_DELIVERED = 1,
  RELAY_EVENT_OPENED = 2,
  RELAY_EVENT_CLICKED = 3,
  RELAY_EVENT_FAILED = 4, /* a failure reported after acceptance, e.g. an SMPP receipt */
  RELAY_EVENT_INBOUND = 5 /* a user's reply */
} relay_event_type;

/* An event the plug-in reports about a message it accepted earlier, or an
 * inbound message. Strings are borrowed for the duration of the call. */
typedef struct relay_event {
  uint32_t struct_size;
  uint32_t type; /* relay_event_type */
  relay_str message_id; /* relay's message_id, when the plug-in knows it; may be empty if
                           carrier_ref is set: relay then finds the message it recorded with that
                           carrier_ref (the one the plug-in gave in callback_submit_done) */
  relay_str carrier_ref; /* the carrier's own reference, if any */
  relay_str reason;      /* short machine word for FAILED, e.g. "undeliverable" */
  relay_str detail;      /* human-readable detail; no personal data */
  relay_str from;        /* INBOUND: the user's address */
  relay_str to;          /* INBOUND: the address the user wrote to (agent, short code, sender) */
  relay_str text;        /* INBOUND: the user's text */
  int64_t at_unix_ms;    /* when it happened at the carrier; 0 = now */
  /* Added in ABI 1.1 (relay reads it only when struct_size covers it, so a
   * plug-in built against 1.0 still works): OPENED / CLICKED: where the user
   * was, when the carrier says — a short code of letters, digits and '-' such
   * as "JP" or "US-CA"; empty when unknown. Counted by location. */
  relay_str location;
} relay_event;

/* An HTTP request relay received at /hooks/{carrier}/{channel}. */
typedef struct relay_http_request {
  relay_str method;
  relay_str path;
  relay_str query;
  const relay_kv* headers; /* names lower-case */
  size_t header_count;
  relay_str body;
} relay_http_request;

/* The host's side, given to on_create.
 * OWNERSHIP: owned by the host; valid from on_create until on_destroy returns.
 * @locality: every callback_* may be called from any thread, concurrently. */
typedef struct relay_host {
  uint32_t struct_size;
  uint32_t abi_version; /* RELAY_PLUGIN_ABI_VERSION of the host */
  void* host_ctx;       /* opaque; pass back as the first argument */

  /* Writes one log line under the plug-in's connector name. Never log
   * personal data (addresses, content) at INFO or above. */
  void (*callback_log)(void* host_ctx, relay_log_level level, relay_str message);

  /* Reports the outcome of on_submit(submit_id). Call exactly once per
   * submit_id, from any thread, at any time after on_submit was entered
   * (even before it returns). carrier_ref: the carrier's reference for
   * ACCEPTED (may be empty); detail: reason text for RETRY/FAILED. */
  void (*callback_submit_done)(void* host_ctx, uint64_t submit_id, relay_submit_status status,
                               relay_str carrier_ref, relay_str detail);

  /* Reports a delivery, open, click, late failure or inbound message. */
  void (*callback_emit_event)(void* host_ctx, const relay_event* event);
} relay_host;

/* The plug-in's side: returned by relay_plugin_entry().
 * OWNERSHIP: owned by the plug-in; must stay valid while the library is
 * loaded (a static const table is the usual choice). */
typedef struct relay_plugin {
  uint32_t abi_version; /* RELAY_PLUGIN_ABI_VERSION the plug-in was built with */
  uint32_t struct_size; /* sizeof(relay_plugin) the plug-in was built with */
  const char* name;     /* e.g. "file_sink"; NUL-terminated, static */
  const char* version;  /* the plug-in's own version; NUL-terminated, static */

  /* Creates one connector instance from its configuration. On failure
   * returns NULL and writes a one-line, NUL-terminated reason naming the
   * offending key into error (at most error_size bytes).
   * @locality: host's start-up or reload thread. */
  void* (*on_create)(const relay_host* host, const relay_kv* config, size_t config_count,
                     char* error, size_t error_size);

  /* Stops the instance: stop accepting work, finish or abandon in-flight
   * submits (calling callback_submit_done for those it finishes), release
   * everything. After it returns no callback may be called for this instance.
   * The host calls it only after it has stopped calling on_submit.
   * @locality: host's shutdown thread. */
  void (*on_destroy)(void* instance);

  /* Starts delivering one message. Must not block: queue the work and
   * report the outcome through callback_submit_done.
   * @locality: one host dispatch thread per instance (never concurrently for
   * the same instance). */
  void (*on_submit)(void* instance, uint64_t submit_id, const relay_message* message);

  /* Optional (may be NULL): parses a carrier callback (delivery report, read
   * receipt, user message) and reports what it means with
   * callback_emit_event before returning. Returns the HTTP status to answer
   * (200/204 accepted, 401 bad signature, 409 replay, 400 malformed).
   * @locality: the host's HTTP threads, possibly concurrently. */
  int (*on_webhook)(void* instance, const relay_http_request* request);
} relay_plugin;

/* The one exported entry point; implement it as
 *   RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &my_table; } */
typedef const relay_plugin* (*relay_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RELAY_PLUGIN_H */
