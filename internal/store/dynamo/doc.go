// Package dynamo is the comms.Store on one DynamoDB table (single-table
// design), for the serverless deployment. It passes the same conformance
// suite (internal/store/storetest) as the SQLite store.
//
// # Table
//
// Partition key pk (S), sort key sk (S), on-demand billing, TTL on ttl (N,
// epoch seconds; see AttrTTL and retention.go for what carries it;
// Backfill stamps items stored before retention existed). Three global secondary
// indexes:
//
//   - by_company: gsi1pk (S) / gsi1sk (S), projection INCLUDE of
//     ByCompanyAttributes (status, channel, contact_id, customer_id,
//     deal_id, cadence_root_id, delivery_status, state). Every row
//     carries gsi1pk = ROWS#<company>, gsi1sk = <scheduled_for>#<id>: a
//     company's rows ordered by (scheduled_for, id). A listing filters on
//     the index and reads the rows it found from the table by key
//     (BatchGetItem, eventually consistent), so that a transition writes
//     the index only when a filtered attribute changes, and never copies a
//     payload into it (issue 14: a 256 KiB email cost 257 index units per
//     transition with ALL).
//   - by_due: gsi2pk (S) / gsi2sk (S), projection KEYS_ONLY, sparse: it
//     costs one small index write per transition instead of a copy of the
//     payload, and the sweeper reads the few rows it finds by key. Only
//     non-terminal rows carry
//     gsi2pk = DUE#<shard>, gsi2sk = <due>#<company>#<id>, where due is
//     next_attempt_at of a pending row and lease_until of a processing one,
//     and shard = FNV-1a(id) mod DueShards (8), so that the sweeper's index
//     is not one hot partition. A write that makes a row terminal drops both
//     attributes, taking it out of the index.
//     Pending webhook deliveries share this index under partitions of their
//     own, gsi2pk = WHDUE#<shard>, gsi2sk =
//     <next_attempt_at>#<company>#<endpoint>#<id>: the sweeper's query is a
//     key equality on DUE#<shard>, so it never reads them (deliveries.go).
//     Their listing likewise shares by_company, gsi1pk =
//     WHDLV#<company>#<endpoint>, gsi1sk = <created_at>#<id>.
//   - by_feed: gsi3pk (S) / gsi3sk (S), on events only: gsi3pk =
//     FEED#<company>#<shard 0–7>, gsi3sk = <at>#<id>#<sequence>, the
//     company's event feed (see ListCompanyEvents).
//
// TableInput declares exactly this, CreateTable creates it (tests,
// emulators, `dispatcher serve --backend aws`), and the CDK stack builds
// production tables from TableInput and the exported names (AttrPK,
// IndexByCompany, …).
//
// # Items
//
//	entity             pk                         sk                           notes
//	company            COMPANY#<company>          COMPANY                      credits (N), settings (JSON S)
//	API key by hash    KEYHASH#<sha256>           KEY                          the whole key (auth path)
//	API key by id      KEYID#<key id>             KEY                          company_id, hash, created_at (finds the others)
//	API key listing    COMPANY#<company>          KEY#<created_at>#<key id>    the whole key (ListAPIKeys order)
//	phone number       COMPANY#<company>          PHONE#<id>
//	number claim       PHONE#<e164>               CLAIM                        company_id, phone_number_id (its one holder)
//	voice agent        COMPANY#<company>          AGENT#<id>
//	webhook endpoint   COMPANY#<company>          WEBHOOK#<id>                 url, event_types (JSON S), secrets (JSON S), version (N)
//	domain claim       DOMAINS                    <domain, labels reversed>    company_id, domain (its one holder, with subdomains)
//	domain claims ver. DOMAINS                    VERSION                      version (N): bumped by every change of claims
//	row                COMM#<company>#<id>        COMM                         + gsi1*, gsi2* while non-terminal, ttl once terminal (retention.go);
//	                                                                           payload, or body_ref when the payload has its own item
//	row payload        COMM#<company>#<id>        BODY                         payload (B), body_ref, ttl (bodyTTL): payloads over
//	                                                                           InlinePayloadMax (1 KiB), written once (bodies.go)
//	event              COMM#<company>#<id>        EVT#<sequence, 10 digits>    + gsi3* (by_feed), ttl (retention.go)
//	message id map     PMID#<provider message id> PMID                         company_id, communication_id, ttl (the row's)
//	suppression        SUPP#<company>             <channel>#<recipient>        lifted_at, lifted_by once lifted
//	idempotency        IDEM#<company>#<key>       IDEM                         expires_at, ttl
//	SMS receipt        SMSR#<e164>                <accepted_at>#<message id>   status, detail, at, ttl (accepted_at + 7 days)
//	entity event       ENTEVT#<company>#<type>#<entity id>  <at>#<id>          name, ttl (at + 2 years): posted to cancel-by-event
//	webhook delivery   WHDLV#<company>#<endpoint>#<id>  WHDLV                  + gsi1* (WHDLV#<company>#<endpoint>), gsi2* while pending (WHDUE#)
//	fan-out cursor     COMPANY#<company>          WHFANOUT                     cursor: the feed cursor fanned out up to
//
// Every item also has an entity attribute naming its kind. A row lives in
// a partition of its own, so a company with millions of rows has no hot
// partition on the table; its listing goes through by_company. Company ids
// must not contain '#' (they are "co_<uuid>"), which keeps COMM# and IDEM#
// keys unambiguous.
//
// Times are strings of fixed width in UTC with nanoseconds
// (2006-01-02T15:04:05.000000000Z), so that they sort lexicographically in
// keys and conditions; a zero time is an absent attribute (in keys: the
// year-1 string). Payload and cancel_policy are binary attributes holding the
// JSON bytes exactly as given; last_error, cadence and outcome are JSON
// strings; cadence_root_id is copied out of cadence for filtering. Optional
// attributes are absent when empty. A payload longer than InlinePayloadMax
// is not in the row's item but in the row's BODY item (bodies.go).
//
// # Access patterns
//
//	method               operation                                     key condition / condition
//	CreateCompany        PutItem                                       attribute_not_exists(pk) → ErrAlreadyExists
//	GetCompany           GetItem (consistent)                          COMPANY#<id> / COMPANY
//	PutSettings          GetItem company settings, GetItem DOMAINS/    company: settings = :as_read (absent → ErrNotFound);
//	                     VERSION, BatchGetItem claims of each domain,  claim Put: attribute_not_exists(pk) OR company_id = :me;
//	                     its parents and the old domains, Query        claim Delete: company_id = :me; VERSION: version = :read
//	                     begins_with(sk, <rev>.) per domain, then      (or attribute_not_exists): a claim held by another
//	                     TransactWriteItems: Update company, [Update   company → SendingDomainTakenError before writing; any
//	                     VERSION, Put new claims, Delete released]     failed condition → read again and retry (≤ 10)
//	CreateAPIKey         TransactWriteItems: Put KEYHASH, Put KEYID,   each Put attribute_not_exists(pk) → ErrAlreadyExists;
//	                     Put listing, ConditionCheck company           company attribute_exists(pk) → ErrNotFound
//	APIKeyByHash         GetItem (consistent)                          KEYHASH#<hash> / KEY
//	ListAPIKeys          Query (consistent)                            pk = COMPANY#<c> AND begins_with(sk, "KEY#")
//	RevokeAPIKey         GetItem KEYID (consistent), then              SET revoked_at = if_not_exists(revoked_at, :at)
//	                     TransactWriteItems: Update KEYHASH + listing   on both (first revocation kept)
//	PutVoiceAgent        TransactWriteItems: UpdateItem SET every      created_at = if_not_exists(…); company
//	                     attribute, ConditionCheck company             attribute_exists(pk) → ErrNotFound
//	PutPhoneNumber       GetItem resource (and old claim), then        resource: e164 = :as_read (or attribute_not_exists(pk));
//	                     TransactWriteItems: Update resource, Condi-   claim: attribute_not_exists(pk) OR owner = this resource
//	                     tionCheck company, Put claim, [Delete old     → ErrPhoneNumberTaken; old claim: owner = this resource;
//	                     claim when the number changes]                a moved resource or claim is read again and retried
//	Get…                 GetItem (consistent)                          COMPANY#<c> / PHONE#<id> | AGENT#<id>
//	List…                Query (consistent)                            pk = COMPANY#<c> AND begins_with(sk, "PHONE#" | "AGENT#")
//	DeleteVoiceAgent     DeleteItem                                    attribute_exists(pk) → ErrNotFound
//	DeletePhoneNumber    GetItem resource and claim, then Transact-    resource: e164 = :as_read (absent → ErrNotFound);
//	                     WriteItems: Delete resource, [Delete claim]   claim: owner = this resource
//	PutWebhookEndpoint   create: TransactWriteItems: Put, Condition-    create: attribute_not_exists(pk) → ErrAlreadyExists,
//	                     Check company; replace: PutItem               company attribute_exists(pk) → ErrNotFound; replace:
//	                                                                   version = :read, ALL_OLD: old → ErrConflict, none → ErrNotFound
//	GetWebhookEndpoint   GetItem (consistent)                          COMPANY#<c> / WEBHOOK#<id>
//	ListWebhookEndpoints Query (consistent)                            pk = COMPANY#<c> AND sk BETWEEN WEBHOOK#<after> AND WEBHOOK$
//	DeleteWebhookEndpoint DeleteItem                                   attribute_exists(pk) → ErrNotFound
//	PutSuppression       GetItem company (consistent), then            no company → ErrNotFound; attribute_not_exists(pk) OR
//	                     UpdateItem ALL_NEW (keeps lifts)              attribute_exists(lifted_at), else ALL_OLD: the active one
//	                                                                   returned unchanged (created false)
//	GetSuppression       GetItem (consistent)                          SUPP#<c> / <channel>#<recipient>
//	ListSuppressions     Query (consistent)                            pk = SUPP#<c> [AND sk > :cursor | BETWEEN <ch># AND <ch>$];
//	                                                                   attribute_not_exists(lifted_at) filter; with a recipient:
//	                                                                   GetItem of each channel's key instead (no partition scan)
//	LiftSuppression      UpdateItem SET lifted_at, lifted_by,          attribute_exists(pk) AND attribute_not_exists(lifted_at)
//	                     ReturnValues ALL_NEW                          → ErrNotFound
//	CommunicationBy-     GetItem PMID# (consistent), then GetItem      the row must still carry the id, else ErrNotFound
//	  ProviderMessageID  of the row it names (consistent)
//	PutSMSReceipt        PutItem (unconditional: a redelivered report   SMSR#<e164> / <accepted_at>#<message id>
//	                     replaces itself)
//	FindSMSReceipts      Query (consistent)                            pk = SMSR#<e164> AND sk BETWEEN <from># AND <to>$
//	PutEntityEvent       PutItem (unconditional)                       ENTEVT#<c>#<type>#<id> / <at>#<event id>
//	EntityEventsSince    Query (consistent)                            pk = ENTEVT#<c>#<type>#<id> AND sk >= <since>
//	CreateCommunication  GetItem company (consistent), then            row: attribute_not_exists(pk) → ErrAlreadyExists;
//	                     TransactWriteItems: Put row, Update company,  company: credits = :seen, SET credits = :seen - 1;
//	                     Put idempotency record (when given)           record: attribute_not_exists(pk) OR
//	                                                                   expires_at <= :created → else ErrIdempotencyKeyExists
//	InsertCommunication  TransactWriteItems: Put row, ConditionCheck   row: attribute_not_exists(pk) → ErrAlreadyExists;
//	                     company (no debit: cadence follow-ups)        company: attribute_exists(pk) → ErrNotFound
//	GetCommunication     Query (consistent)                            pk = COMM#<c>#<id> AND sk BETWEEN BODY AND COMM (row + payload)
//	UpdateCommunication  TransactWriteItems (with debit after a        version = :expected [AND body_ref = :ref], ReturnValuesOn-
//	                     GetItem company): Put row, [Update company],  ConditionCheckFailure ALL_OLD: old image → ErrConflict, none →
//	                     Put events, [insert's row and events],        ErrNotFound (an old image at the expected version: the body
//	                     Put suppressions, [Put PMID# map], [Put BODY  changed, written again with it); suppressions, the message
//	                     when the payload or its TTL changed]          id map and the body unconditional (written only with the row)
//	GetIdempotency       GetItem (consistent)                          IDEM#<c>#<key> / IDEM; expired by now → ErrNotFound
//	ListCommunications   Query by_company (eventually consistent),     gsi1pk = ROWS#<c> [AND gsi1sk >= :lo | < :hi |
//	                     then BatchGetItem (eventually consistent) of  BETWEEN :lo AND :hi]; other filters as FilterExpression;
//	                     the rows, then of their BODY items            rows that no longer match once read are left out
//	DueCommunications    Query by_due, every shard in parallel, then   gsi2pk = DUE#<n> AND gsi2sk < <t>, Limit = limit;
//	                     BatchGetItem (consistent) of the earliest     keys merged by gsi2sk; rows re-checked as still due
//	                     rows, then of their BODY items
//	FanOut               BatchGetItem (consistent) of the deliveries,  cursor Put: cursor = :from (attribute_not_exists(pk) for
//	                     then TransactWriteItems: Put cursor, Put      "") → ErrConflict; delivery Put: attribute_not_exists(pk)
//	                     each delivery not found (≤ 99 + 1 items)      (written since the read → read again, retry ≤ 10)
//	FanOutCursor         GetItem (consistent)                          COMPANY#<c> / WHFANOUT
//	GetDelivery          GetItem (consistent)                          WHDLV#<c>#<endpoint>#<id> / WHDLV
//	ListDeliveries       Query by_company backwards, then BatchGet-    gsi1pk = WHDLV#<c>#<endpoint> [AND gsi1sk < :cursor];
//	                     Item (both eventually consistent)             state as FilterExpression, and again on the items read
//	UpdateDelivery       UpdateItem SET state, attempts, next_attempt_ version = :expected, ReturnValuesOnConditionCheckFailure
//	                     at, updated_at, version, gsi2* (or REMOVE)    ALL_OLD: old image → ErrConflict, none → ErrNotFound
//	DueDeliveries        Query by_due, WHDUE# shards in parallel, then gsi2pk = WHDUE#<n> AND gsi2sk < <t>$ (t inclusive);
//	                     BatchGetItem (consistent) of the earliest     deliveries re-checked as still pending and due
//
// ListCommunications turns ScheduledAfter (inclusive), the cursor (the row
// after <scheduled_for>#<id>) and ScheduledBefore (exclusive) into the
// gsi1sk range, and status, channel, contact, customer, deal, cadence
// root and delivery status (with status = sent) into a FilterExpression; it reads pages until it has Limit+1 matches
// (to report whether more exist). Filtering costs reads in proportion to the
// rows of the time window, not to the matches.
//
// A row's Delivery is three optional attributes, delivery_status,
// delivery_at and delivery_detail. Where its recipient is, two more:
// timezone_source (S) and timezones (L of S), absent on rows stored before
// they existed. The message id map (PMID#) is written in
// the transaction of the transition that gives the row its provider message
// id — a Change does not carry the row it was made from, so the store
// recognises it by its sent event, which exactly those transitions emit —
// and by CreateCommunication for a row created with one. A Change's
// suppressions are unconditional Puts in the row's transaction (one per
// key), so a lost compare-and-swap writes none. Suppressions are per
// company (their partition is the company's), and so are phone-number
// resources; a number's claim (PHONE#<e164>) is global, which is what keeps
// a number to one resource of one company. Resources stored before claims
// existed get theirs at their next put.
//
// Webhook endpoints (status webhooks) are per company too, in the
// company's partition: a company has at most webhooks.MaxEndpoints (20), so
// the listing is one small strongly consistent Query in id order, the cursor
// the last id. Each carries a version, so that a replace written from a
// stale read (a PATCH racing a secret rotation) fails instead of undoing
// the other write. Its signing secrets are stored as they are (the table is
// encrypted at rest; the API shows them only to dispatcher:write keys).
//
// Sending domains are claimed the same way, with their subdomains: one
// DOMAINS partition holds a claim per declared domain, sort key the domain
// with its labels reversed (com.example.mail), so a domain's subdomains are
// a begins_with(<rev>.) Query and its parents GetItems. PutSettings writes
// the settings, the new claims and the released ones in one transaction
// that also bumps DOMAINS/VERSION on condition that it is the version read
// before the claims were: claim transactions therefore commit one at a
// time, and one that read a stale picture (another company claimed a
// parent or a subdomain meanwhile) fails and is retried. A settings write
// that changes no claim does not touch VERSION. The transaction holds at
// most comms.MaxSendingDomains (40) new claims + 40 released + 2 items,
// within DynamoDB's 100. Settings stored before claims existed hold none
// until their company's next PutSettings (there is no backfill here, unlike
// the SQLite migration): until then another company can claim an
// overlapping domain, and that next PutSettings is then refused.
//
// A webhook delivery (one event's message to one endpoint) lives in a
// partition of its own, like a row, so a busy endpoint's writes spread over
// the table; its payload (the body as sent) is binary, byte for byte, and
// its attempts a JSON string of the last webhooks.MaxStoredAttempts (20).
// The fan-out writes the company's new deliveries and moves its cursor in
// one transaction: at most webhooks.MaxFanOut (99) deliveries and the
// cursor, DynamoDB's 100 items, and at most 4 MB in all (a delivery's
// payload embeds the row, so a fan-out of large emails needs fewer
// deliveries per call). Within one process a company's fan-outs take a
// lock, as its debits do. A delivery item is bounded by the 400 KB item
// limit like the row it carries (by_company keeps only its keys and state).
//
// # Consistency
//
// Every GetItem, BatchGetItem and base-table Query is strongly consistent,
// except the listings' BatchGetItems, which read what their index query
// found and are eventually consistent like it (half the read units). Index
// reads are eventually consistent, as DynamoDB offers nothing else on a
// GSI: a row written a moment ago may be missing from ListCommunications,
// or listed with its previous state. DueCommunications takes only the
// membership from its index and reads the rows themselves consistently,
// dropping any that stopped being due; a row that became due a moment ago
// may be missed until the next sweep. (The conformance suite reads right
// after writing, which holds on emulators, whose indexes are synchronous,
// but could flake against real DynamoDB.)
//
// An SMS receipt is an SNS SMS delivery report whose message id no row
// carried when it arrived (feedback.SMSLedger matches it to an SMS attempt
// whose result was never written, by number and time). Its partition is
// the destination number's, its sort key the fixed-width acceptance time
// and the message id, so a time window is one BETWEEN; it is never updated
// and TTL removes it a week after SNS accepted the message. Whether a row
// has claimed it since is read from the PMID# map, not stored on it.
//
// Idempotency records are live while now < expires_at. TTL deletes them
// some time after ttl (the epoch second at or after expires_at) — or never,
// on emulators — so liveness is always decided by expires_at, both in
// GetIdempotency and in the condition that lets a create replace an expired
// record.
//
// # Credits
//
// A debit is a compare-and-swap on the balance: CreateCommunication (and
// UpdateCommunication with debit) reads the company's credits with a
// consistent GetItem, refuses at 0, and commits a transaction whose company
// item is "SET credits = :seen - 1 IF credits = :seen". The balance it
// returns, and records in the idempotency record for replays, is therefore
// exact: the balance right after this debit. If the balance moved between
// the read and the commit (a concurrent debit or top-up), or DynamoDB
// reports a TransactionConflict, it reads again and retries, up to 10
// attempts with jittered backoff (5 ms doubling to 100 ms), and then fails
// with ErrConflict. Within one process, debits of the same company also take
// a per-company lock, so that the process never races itself (its
// concurrent debits queue instead of failing and retrying); across processes
// (Lambda instances) the condition alone keeps the balance right. The cost is
// throughput on one company's balance: one debit at a time per company, some
// tens to a few hundred per second, with ErrConflict when many processes
// contend for one company at once.
//
// Failed transactions are told apart by their CancellationReasons (one per
// item, in request order): ConditionalCheckFailed on the row's Put is
// ErrAlreadyExists (create) or, with the old image that ALL_OLD returns,
// ErrConflict versus ErrNotFound (update); on the idempotency record,
// ErrIdempotencyKeyExists; on the company, a retry (a missing company shows
// on the next read, as ErrNotFound). AWS and moto fill the reasons the same
// way for conditions. Moto never reports TransactionConflict: it runs
// concurrent requests without isolation, and rolls a cancelled transaction
// back by restoring a copy of the whole table taken when it began, which
// undoes (or resurrects) writes that other requests made meanwhile. The
// per-company lock is what lets the suite's concurrent tests pass against
// moto (they race within one process); against DynamoDB it only saves
// retries. An SDK retry of a TransactWriteItems whose response was lost is
// harmless on DynamoDB (the SDK fills in ClientRequestToken, so the retry
// returns the first outcome); moto ignores the token.
//
// # Errors
//
// Errors are wrapped with the method's name ("dynamo.GetCompany: not
// found") and translated into the sentinels of comms where they have a
// meaning there; anything else (throttling after the SDK's own retries, a
// missing table, validation) passes through wrapped. One such validation
// error is size: an item holds at most 400 KB, so a row whose payload is
// near that (an email html_body of a few hundred KB, which a 1 MiB request
// body allows) is refused with a ValidationException that the SQLite store
// would have accepted.
package dynamo
