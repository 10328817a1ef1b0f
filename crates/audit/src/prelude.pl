/* zkaudit prelude: the ledger as Prolog predicates.

   Facts are loaded on demand. Each public predicate first states what it
   needs ('$need'/1): the events of one type, one leaf index, one digest...
   If that part of the ledger is not loaded yet, '$need'/1 throws
   '$zk_need'(Key); the host loads the matching events from the index and
   runs the query again. Nothing here has side effects, so a rerun answers
   exactly as a single run over a fully loaded ledger would.

   Every event an answer rests on is recorded with '$use'/1 (backtrackable),
   so the host can attach its inclusion proof to the answer.  */

:- use_module(library(lists)).
:- use_module(library(iso_ext)).
:- use_module(library(charsio)).
:- use_module(library(between)).

:- dynamic('$ev'/6).
:- dynamic('$meta'/3).
:- dynamic('$parent'/2).
:- dynamic('$proof'/5).
:- dynamic('$stamp'/3).
:- dynamic('$loaded'/1).
:- dynamic('$verified'/2).
:- dynamic('$integrity'/2).
:- dynamic('$window'/2).
:- dynamic('$override'/2).

'$need'(index(I)) :- '$ev'(I, _, _, _, _, _), !.
'$need'(K) :-
    (   '$loaded'(all) -> true
    ;   '$loaded'(K) -> true
    ;   throw('$zk_need'(K))
    ).

'$use'(I) :-
    (   bb_get('$zk_used', U) -> true ; U = [] ),
    bb_b_put('$zk_used', [I|U]).

%% cite(+Indices): names events as evidence of the current answer (for
%% events reached inside findall/3 and similar, whose bindings are undone).
cite([]).
cite([I|Is]) :- '$use'(I), cite(Is).

%% window(-FromNs, -ToNs): the time window of this run (ns since the epoch;
%% ToNs exclusive), or the whole log.
window(F, T) :- ( '$window'(F0, T0) -> F = F0, T = T0 ; F = 0, T = 9223372036854775807 ).

%% pval(+Name, -Value): a compliance pack parameter, as overridden on the
%% command line or the pack's param(Name, Default).
pval(N, V) :- ( '$override'(N, V0) -> V = V0 ; param(N, V) ).

%% event(?Index, ?TimestampNs, ?Layer, ?Type, ?Input, ?Output)
event(I, T, L, Ty, In, Out) :-
    (   integer(I) -> '$need'(index(I))
    ;   atom(Ty) -> '$need'(type(Ty))
    ;   atom(In) -> '$need'(input(In))
    ;   atom(Out) -> '$need'(output(Out))
    ;   atom(L) -> '$need'(layer(L))
    ;   '$need'(all)
    ),
    '$ev'(I, T, L, Ty, In, Out),
    '$use'(I).

%% meta(?Index, ?Key, ?Value): top-level metadata. Strings and booleans are
%% atoms, numbers are numbers, an array of strings and numbers is a list,
%% anything else is the atom of its JSON text.
meta(I, K, V) :-
    (   integer(I) -> '$need'(index(I))
    ;   atom(K) -> '$need'(meta_key(K))
    ;   '$need'(all)
    ),
    '$meta'(I, K, V),
    '$use'(I).

%% parent(?Index, ?Digest): Digest is listed in the event's parents.
parent(I, D) :-
    (   integer(I) -> '$need'(index(I))
    ;   atom(D) -> '$need'(parent(D))
    ;   '$need'(all)
    ),
    '$parent'(I, D),
    '$use'(I).

%% proof(?Index, ?Kind, ?ReceiptDigest, ?ImageId, ?JournalDigest)
proof(I, K, R, Img, J) :-
    (   integer(I) -> '$need'(index(I)) ; '$need'(proofs) ),
    '$proof'(I, K, R, Img, J),
    '$use'(I).

%% timestamp(?Index, ?Text, ?PrecisionNs): the timestamp as written and its
%% precision in ns (1 for nine fraction digits, 10^9 for whole seconds).
timestamp(I, Text, P) :-
    (   integer(I) -> '$need'(index(I)) ; '$need'(all) ),
    '$stamp'(I, Text, P),
    '$use'(I).

%% zkaudit(computation(PlanIdOrHash),
%%         proof(Index, ReceiptDigest, ImageId, PlanHash, DataRoot, OutputHash, Verifies))
%% Verifies is `valid`, `invalid(Reason)` or `missing` (no receipt stored),
%% checked now against the program registry.
zkaudit(computation(P), proof(I, R, Img, PlanHash, DataRoot, OutputHash, V)) :-
    '$need'(proofs),
    '$proof'(I, _, R, Img, _),
    '$ev'(I, _, _, _, PlanHash, OutputHash),
    (   '$meta'(I, planId, P) -> true
    ;   PlanHash == P -> true
    ;   atom(P), atom_concat('sha256:', P, PlanHash)
    ),
    (   '$meta'(I, dataRoot, DataRoot) -> true ; DataRoot = unknown ),
    '$need'(verify(I)),
    '$verified'(I, V),
    '$use'(I).

%% zkaudit_trace(+From, ?To, -Path): Path is the list of leaf indices of a
%% shortest chain of events leading from digest From to digest To; an event
%% leads from D to its output when D is its input or one of its parents.
zkaudit_trace(From, To, Path) :-
    atom(From),
    '$trace'([From-[]], [From], To, Rev),
    reverse(Rev, Path),
    cite(Path).

'$trace'([D-P|_], _, D, P).
'$trace'([D-P|Queue], Seen, To, Path) :-
    length(P, Depth),
    Depth < 64,
    findall(O-[I|P], ( '$consumer'(D, I), '$ev'(I, _, _, _, _, O), \+ memberchk(O, Seen) ), Next0),
    '$dedup'(Next0, Seen, Next, Seen1),
    append(Queue, Next, Queue1),
    '$trace'(Queue1, Seen1, To, Path).

'$dedup'([], S, [], S).
'$dedup'([O-P|Xs], S, Ys, S1) :-
    (   memberchk(O, S) -> Ys = Ys0 ; Ys = [O-P|Ys0] ),
    '$dedup'(Xs, [O|S], Ys0, S1).

'$consumer'(D, I) :-
    '$need'(input(D)),
    '$need'(parent(D)),
    (   '$ev'(I, _, _, _, D, _) ; '$parent'(I, D) ).

%% zkaudit_replay(+Selector, -Steps): the events of one job or batch in
%% timestamp order (leaf index breaking ties), as step(Index, TimestampNs, Type).
%% Selector: job(Id) (metadata job_id), batch(Id) (metadata batch_id), or
%% meta(Key, Value).
zkaudit_replay(job(Id), Steps) :- zkaudit_replay(meta(job_id, Id), Steps).
zkaudit_replay(batch(Id), Steps) :- zkaudit_replay(meta(batch_id, Id), Steps).
zkaudit_replay(meta(K, V), Steps) :-
    atom(K),
    '$need'(meta_key(K)),
    findall(T-I-Ty, ( '$meta'(I, K, V), '$ev'(I, T, _, Ty, _, _) ), L0),
    L0 \== [],
    keysort(L0, L),
    findall(step(I, T, Ty), member(T-I-Ty, L), Steps),
    findall(I, member(_-I-_, L), Is),
    cite(Is).

%% zkaudit_integrity(?Scope): Scope `checkpoint` holds if the checkpoint's
%% signature verifies with the log's key; `log` also needs a full fsck
%% (every entry, tile and the root recomputed) to pass.
%% Any other scope is an error that names the known ones, never a plain
%% failure (which an auditor would read as "integrity failed").
zkaudit_integrity(S) :-
    Known = [checkpoint, log],
    (   var(S) -> member(S, Known)
    ;   memberchk(S, Known) -> true
    ;   throw(error(domain_error(integrity_scope(one_of(Known)), S), zkaudit_integrity/1))
    ),
    '$need'(integrity(S)),
    '$integrity'(S, ok).

%% What collectors recorded (zkaudit record, zkaudit collect audit): ECS
%% fields in metadata; processes are named by `process.entity_id`.

%% process(?Index, ?EntityId, ?Executable, ?Args): a process image began,
%% by exec (Args its argv) or by a fork recorded on its own (Args []).
process(I, E, Exe, Args) :-
    member(Ty, [process_exec, process_fork]),
    event(I, _, _, Ty, _, _),
    '$meta'(I, 'process.entity_id', E),
    '$meta'(I, 'process.executable', Exe),
    (   Ty == process_exec, '$meta'(I, 'process.args', A) -> Args = A ; Args = [] ).

%% process_parent(?Child, ?Parent): leaf indices of a process's launch
%% event and of its parent process's.
process_parent(C, P) :-
    process(C, _, _, _),
    '$meta'(C, 'process.parent.entity_id', PE),
    process(P, PE, _, _).

%% process_exit(?Index, ?EntityId, ?Status): Status is exit(Code) or
%% signal(Name), e.g. signal('SIGSEGV').
process_exit(I, E, S) :-
    event(I, _, _, process_exit, _, _),
    '$meta'(I, 'process.entity_id', E),
    (   '$meta'(I, 'process.exit_code', C) -> S = exit(C)
    ;   '$meta'(I, 'zkaudit.process.signal', N) -> S = signal(N)
    ;   S = unknown
    ).

%% file_read(?Index, ?Path, ?Digest, ?EntityId): process EntityId opened
%% Path for reading when its content had Digest.
file_read(I, P, D, E) :- '$file_event'(file_read, I, P, D, E).

%% file_written(?Index, ?Path, ?Digest, ?EntityId): Path held Digest when
%% process EntityId closed it after writing.
file_written(I, P, D, E) :- '$file_event'(file_write, I, P, D, E).

'$file_event'(Ty, I, P, D, E) :-
    event(I, _, _, Ty, _, D),
    '$meta'(I, 'file.path', P),
    '$meta'(I, 'process.entity_id', E).

%% connected(?Index, ?EntityId, ?DestinationIp, ?DestinationPort): process
%% EntityId connected (or began a non-blocking connect) to Ip:Port.
connected(I, E, Ip, Port) :-
    event(I, _, _, network_connect, _, _),
    \+ '$meta'(I, 'event.outcome', failure),
    '$meta'(I, 'process.entity_id', E),
    '$meta'(I, 'destination.ip', Ip),
    '$meta'(I, 'destination.port', Port).

%% collector_gap(?Index, ?Collector, ?Reason, ?Lost): where a collector
%% was blind: Reason (kernel_lost, buffer_full, spool_full, unreadable) and
%% how many events or items it missed.
collector_gap(I, C, R, N) :-
    event(I, _, _, collector_gap, _, _),
    '$meta'(I, 'observer.type', C),
    '$meta'(I, 'event.action', R),
    '$meta'(I, 'zkaudit.gap.lost', N).

%% flow(?Index, ?OrigIp, ?OrigPort, ?RespIp, ?RespPort, ?Proto): a network
%% flow (Zeek conn.log) from OrigIp:OrigPort to RespIp:RespPort; Proto is
%% tcp, udp, icmp or unknown_transport (for ICMP the ports are type, code).
flow(I, OH, OP, RH, RP, Pr) :-
    event(I, _, _, network_flow, _, _),
    '$meta'(I, 'id.orig_h', OH),
    '$meta'(I, 'id.orig_p', OP),
    '$meta'(I, 'id.resp_h', RH),
    '$meta'(I, 'id.resp_p', RP),
    '$meta'(I, proto, Pr).

%% packet_sent(?Index, ?From, ?To, +FromNs, +ToNs): flow Index carried at
%% least one packet from address From to address To, and was active at
%% some time in [FromNs, ToNs).
packet_sent(I, A, B, F, T) :-
    flow(I, OH, _, RH, _, _),
    (   OH = A, RH = B, '$meta'(I, orig_pkts, N)
    ;   OH = B, RH = A, '$meta'(I, resp_pkts, N)
    ),
    N > 0,
    '$ev'(I, Start, _, _, _, _),
    '$meta'(I, 'event.duration', D),
    Start < T,
    Start + D >= F.

%% flow_of(?Index, ?FlowIndex): a DNS, TLS or HTTP event and the flow it
%% was seen in (the same Zeek uid).
flow_of(I, F) :-
    member(Ty, [dns_query, tls_handshake, http_request]),
    event(I, _, _, Ty, _, _),
    '$meta'(I, uid, U),
    event(F, _, _, network_flow, _, _),
    '$meta'(F, uid, U).

%% dns_answer(?Index, ?Query, ?Rcode, ?Answers): a DNS transaction; Rcode
%% is the response code's name (NOERROR, NXDOMAIN, ...) or none when no
%% response was seen; Answers the answer data as a list.
dns_answer(I, Q, R, A) :-
    event(I, _, _, dns_query, _, _),
    '$meta'(I, query, Q),
    (   '$meta'(I, rcode_name, R0) -> R = R0 ; R = none ),
    (   '$meta'(I, answers, A0) -> A = A0 ; A = [] ).

%% tls_session(?Index, ?ServerName, ?Version, ?Ja4): a TLS handshake with
%% its SNI (none if absent), negotiated version and JA4 fingerprint.
tls_session(I, S, V, J) :-
    event(I, _, _, tls_handshake, _, _),
    (   '$meta'(I, server_name, S0) -> S = S0 ; S = none ),
    (   '$meta'(I, version, V0) -> V = V0 ; V = none ),
    (   '$meta'(I, ja4, J0) -> J = J0 ; J = none ).

%% http_request(?Index, ?Method, ?Host, ?Uri, ?Status): an HTTP/1.x
%% transaction; Status is the response code or none.
http_request(I, M, H, U, St) :-
    event(I, _, _, http_request, _, _),
    '$meta'(I, method, M),
    (   '$meta'(I, host, H0) -> H = H0 ; H = none ),
    '$meta'(I, uri, U),
    (   '$meta'(I, status_code, St0) -> St = St0 ; St = none ).

%% host_metric(?Index, ?Source, ?Key, ?Value): a metric of a host sample:
%% Key is its OpenTelemetry name with attributes in braces, e.g.
%% 'system.cpu.time{cpu=0,mode=user}', 'hw.temperature{zone=0,type=x}'.
host_metric(I, S, K, V) :-
    event(I, _, _, host_metrics, _, _),
    '$meta'(I, 'zkaudit.host.source', S),
    '$meta'(I, K, V),
    number(V).

%% sensor_unavailable(?Index, ?Source): a collector found no readings for
%% a sensor source (hwmon, thermal, rapl) and said so, once.
sensor_unavailable(I, S) :-
    event(I, _, _, sensor_unavailable, _, _),
    '$meta'(I, 'zkaudit.host.source', S).

%% git_commit(?Index, ?Revision, ?AuthorEmail, ?Summary): a recorded commit.
git_commit(I, R, A, S) :-
    event(I, _, _, git_commit, _, _),
    '$meta'(I, 'vcs.ref.head.revision', R),
    '$meta'(I, 'git.author.email', A),
    '$meta'(I, 'git.message.summary', S).

%% downloaded(?Index, ?Purl, ?Digest, ?Decision): an artifact the registry
%% gateway was asked for: its purl (`pkg:npm/ms@2.1.3`), the SHA-256 of
%% the bytes as fetched, and the policy's decision: allow, warn, released
%% (held once, released by an admin) or quarantine (not served).
downloaded(I, P, D, Dec) :-
    event(I, _, _, download, D, _),
    '$meta'(I, 'zkaudit.download.purl', P),
    '$meta'(I, 'zkaudit.download.decision', Dec).

%% download_integrity(?Index, ?Matched): whether the bytes matched the
%% registry's declared digest (true, false, or none when it declares none).
download_integrity(I, M) :-
    event(I, _, _, download, _, _),
    '$meta'(I, 'zkaudit.download.decision', _),
    (   '$meta'(I, 'zkaudit.download.digest_match', M0) -> M = M0 ; M = none ).

%% download_failed(?Index, ?PackageName, ?Stage, ?Message): a request the
%% gateway could not serve because the upstream failed (Stage `metadata`
%% or `artifact`); nothing was served.
download_failed(I, N, St, Msg) :-
    event(I, _, _, download, _, _),
    '$meta'(I, 'event.action', download_failed),
    '$meta'(I, 'package.name', N),
    '$meta'(I, 'zkaudit.download.stage', St),
    '$meta'(I, 'error.message', Msg).

%% quarantined(?Index, ?Purl, ?Digest): a download the policy held back.
quarantined(I, P, D) :- downloaded(I, P, D, quarantine).

%% exec_denied(?Index, ?Executable, ?Digest, ?Purl): the quarantine guard
%% refused to execute Executable, whose SHA-256 Digest is that of the
%% quarantined download of Purl (the event's parents name that download).
exec_denied(I, X, D, P) :-
    event(I, _, _, exec_denied, D, _),
    '$meta'(I, 'process.executable', X),
    '$meta'(I, 'zkaudit.download.purl', P).

%% tainted(+Digest, ?Source): Digest derives from a download: it is the
%% bytes of one, or a lineage path (zkaudit_trace/3) leads from them to it.
%% Source is the download's purl; the download event and the path are
%% cited as evidence.
tainted(D, Src) :-
    atom(D),
    downloaded(I, Src, X, _),
    (   X == D -> true ; once(zkaudit_trace(X, D, _)) ),
    cite([I]).

%% finding(?Index, ?Rule, ?Severity, ?Evidence): an anomaly finding
%% recorded by `zkaudit detect` (OCSF Detection Finding 2004): its rule ID,
%% OCSF severity caption ('High', …) and the leaf indices of the events it
%% rests on.
finding(I, R, S, E) :-
    event(I, _, application, finding, _, _),
    '$meta'(I, 'rule.id', R),
    '$meta'(I, 'ocsf.severity', S),
    '$meta'(I, 'zkaudit.finding.events', E).

%% llm_call(?Index, ?CallId, ?TokenId, ?RequestedModel, ?ServedModel, ?Status):
%% a call through the LLM gateway: the caller's token ID, the model asked
%% for and the one the upstream said it served (`none` when unknown), and
%% the HTTP status the caller got.
llm_call(I, C, Tok, Req, Served, St) :-
    event(I, _, _, llm_call, _, _),
    '$meta'(I, 'event.id', C),
    '$meta'(I, 'user.id', Tok),
    (   '$meta'(I, 'gen_ai.request.model', R0) -> Req = R0 ; Req = none ),
    (   '$meta'(I, 'gen_ai.response.model', S0) -> Served = S0 ; Served = none ),
    '$meta'(I, 'http.response.status_code', St).

%% llm_completion(?Index, ?State): how a call ended: complete, rejected,
%% blocked, upstream_error, upstream_unreachable, upstream_broken or
%% client_aborted.
llm_completion(I, S) :-
    event(I, _, _, llm_call, _, _),
    '$meta'(I, 'zkaudit.llm.completion', S).

%% llm_usage(?Index, ?InputTokens, ?OutputTokens): token counts as the
%% upstream gave them (`none` when it gave none).
llm_usage(I, In, Out) :-
    event(I, _, _, llm_call, _, _),
    (   '$meta'(I, 'gen_ai.usage.input_tokens', In0) -> In = In0 ; In = none ),
    (   '$meta'(I, 'gen_ai.usage.output_tokens', Out0) -> Out = Out0 ; Out = none ).

%% llm_decision(?Index, ?Rule, ?Decision): a policy rule the call was
%% checked against (model_allowlist.request, rate_limit.requests,
%% rate_limit.tokens, pii.request, model_allowlist.response, pii.response)
%% and what it decided (allow, deny, redact, block).
llm_decision(I, R, D) :-
    event(I, _, _, llm_call, _, _),
    '$meta'(I, 'zkaudit.llm.policy.decisions', L),
    member(X, L),
    '$split_atom'(X, '=', [R, D]).

%% llm_pii(?Index, ?Where, ?Entity, ?Count, ?Action): personal data or
%% secrets found in a call's request or response (Where), of a kind
%% (email, phone, card_number, iban, us_ssn, secret), how many, and what
%% the policy did (block, redact, flag). The matched text is never logged.
llm_pii(I, W, E, N, A) :-
    event(I, _, _, llm_call, _, _),
    '$meta'(I, 'zkaudit.llm.pii.findings', L),
    member(X, L),
    '$split_atom'(X, '/', [W, E, NA, A]),
    atom_chars(NA, NC), number_chars(N, NC).

%% llm_policy(?Index, ?Digest, ?AllowedModels, ?RequestsPerMinute, ?TokensPerMinute):
%% a policy the gateway put in force (its digest is the calls'
%% `zkaudit.llm.policy.digest`).
llm_policy(I, D, Allow, Rpm, Tpm) :-
    event(I, _, _, llm_policy, D, _),
    '$meta'(I, 'zkaudit.llm.models.allow', Allow),
    '$meta'(I, 'zkaudit.llm.rate_limits.requests_per_minute', Rpm),
    '$meta'(I, 'zkaudit.llm.rate_limits.tokens_per_minute', Tpm).

%% llm_policy_of(?Call, ?Policy): the policy event in force for a call.
llm_policy_of(I, P) :-
    event(I, _, _, llm_call, _, _),
    '$meta'(I, 'zkaudit.llm.policy.digest', D),
    event(P, _, _, llm_policy, D, _).

%% llm_model_allowed(+Model, +Allow): Model is on the allowlist Allow
%% (exact names, or prefixes ending in `*`).
llm_model_allowed(M, Allow) :-
    member(A, Allow),
    atom_chars(A, Cs),
    (   append(P, ['*'], Cs) -> atom_chars(M, Ms), append(P, _, Ms) ; A == M ),
    !.

'$split_atom'(A, Sep, Parts) :-
    atom_chars(A, Cs), atom_chars(Sep, [S]),
    '$split_chars'(Cs, S, Css),
    findall(P, ( member(C, Css), atom_chars(P, C) ), Parts).

'$split_chars'(Cs, S, [W|Ws]) :-
    (   append(W, [S|Rest], Cs) -> '$split_chars'(Rest, S, Ws) ; W = Cs, Ws = [] ).

%% availability(+Service, -Percent, -Outages, -Used): the share of time
%% Service was up, from its availability observations ('$probe'/4): its
%% service_down / service_up / service_check events (meta `service`), and
%% the recorded network flows to the endpoints its service_endpoint events
%% declare. The measured span runs from the first to the last observation
%% inside the window. Outages is a list of outage(DownIndex, Ns): each
%% down observation until the next up one (or the end of the span).
availability(S, P, Outages, Used) :-
    window(F, T),
    findall(Ts-I-Ty, ( '$probe'(S, Ts, I, Ty), Ts >= F, Ts < T ), L0),
    keysort(L0, L),
    L = [Start-_-_|_],
    last(L, End-_-_),
    Span is End - Start,
    Span > 0,
    '$outages'(L, End, up, Outages),
    foldl('$add_outage', Outages, 0, Down),
    P is 100.0 * (Span - Down) / Span,
    findall(I, ( member(_-I-_, L) ; '$endpoint'(S, I, _, _) ), Used).

%% '$probe'(?Service, -Ts, -Index, -Type): one availability observation.
%% A flow to a declared endpoint that was refused or never answered
%% (conn_state S0, REJ, RSTOS0, SH) is a service_down, any other a
%% service_up.
'$probe'(S, Ts, I, Ty) :-
    member(Ty, [service_down, service_up, service_check]),
    event(I, Ts, _, Ty, _, _),
    '$meta'(I, service, S).
'$probe'(S, Ts, I, Ty) :-
    '$endpoint'(S, _, H, P),
    event(I, Ts, _, network_flow, _, _),
    '$meta'(I, 'id.resp_h', H),
    '$meta'(I, 'id.resp_p', P),
    '$meta'(I, conn_state, St),
    (   memberchk(St, ['S0', 'REJ', 'RSTOS0', 'SH']) -> Ty = service_down ; Ty = service_up ).

%% '$endpoint'(?Service, -Index, -Ip, -Port): a service_endpoint event
%% declaring that Service answers at Ip:Port.
'$endpoint'(S, I, H, P) :-
    event(I, _, _, service_endpoint, _, _),
    '$meta'(I, service, S),
    '$meta'(I, ip, H),
    '$meta'(I, port, P).

'$add_outage'(outage(_, D), A0, A) :- A is A0 + D.

'$outages'([], _, up, []).
'$outages'([], End, down(T0, I0), [outage(I0, D)]) :- D is End - T0.
'$outages'([T-I-Ty|Xs], End, State, Os) :-
    (   Ty == service_down, State == up ->
        '$outages'(Xs, End, down(T, I), Os)
    ;   Ty == service_up, State = down(T0, I0) ->
        D is T - T0, Os = [outage(I0, D)|Os1], '$outages'(Xs, End, up, Os1)
    ;   '$outages'(Xs, End, State, Os)
    ).

last([X], X) :- !.
last([_|Xs], X) :- last(Xs, X).

%% availability_check(+Min, +Tag, -Used, -Violations): the check of a
%% rule "every service is up at least Min percent of its span"; each
%% outage of a service below Min is a violation Tag(Service, Percent,
%% min(Min), outage_ms(Ms)).
availability_check(Min, Tag, Used, Violations) :-
    services(Ss),
    findall(U-V,
            ( member(S, Ss),
              availability(S, P, Outages, U),
              findall(violation(I, R),
                      ( P < Min, member(outage(I, Ns), Outages), Ms is Ns // 1000000,
                        R =.. [Tag, S, P, min(Min), outage_ms(Ms)] ),
                      V) ),
            Pairs),
    findall(U, member(U-_, Pairs), Us), append(Us, Used),
    findall(V, member(_-V, Pairs), Vs), append(Vs, Violations).

%% threshold_check(+Type, +Key, +Max, +Tag, -Used, -Violations): the check
%% of a rule "metadata Key of every Type event is at most Max"; a larger
%% value is a violation Tag(Value, max(Max)), a missing one missing(Key).
threshold_check(Type, Key, Max, Tag, Used, Violations) :-
    findall(I, event(I, _, _, Type, _, _), Used),
    findall(violation(I, R),
            ( member(I, Used),
              (   '$meta'(I, Key, V) -> V > Max, R =.. [Tag, V, max(Max)]
              ;   R = missing(Key)
              ) ),
            Violations).

%% '$measure'(+Rule, ?Name, ?Value): the pack's measure/3, if it has one
%% (what a rule measured, e.g. max_failover_ms = 73, for reports).
'$measure'(R, N, V) :-
    catch(measure(R, N, V), error(existence_error(procedure, measure/3), _), fail).

%% min_of(+Numbers, -Min), max_of(+Numbers, -Max), sum_of(+Numbers, -Sum):
%% arithmetic over a non-empty (for min and max) list of numbers.
min_of([X|Xs], M) :- foldl('$min2', Xs, X, M).
max_of([X|Xs], M) :- foldl('$max2', Xs, X, M).
sum_of(Xs, S) :- foldl('$add2', Xs, 0, S).
'$min2'(X, A, M) :- ( X < A -> M = X ; M = A ).
'$max2'(X, A, M) :- ( X > A -> M = X ; M = A ).
'$add2'(X, A, S) :- S is A + X.

%% min_availability(-Percent): the lowest availability of any service in
%% the window (fails without observations).
min_availability(P) :-
    services(Ss),
    findall(X, ( member(S, Ss), availability(S, X, _, _) ), Xs),
    Xs \== [],
    min_of(Xs, P).

%% max_meta(+Type, +Key, -Max): the largest numeric metadata Key of the
%% Type events (fails without any).
max_meta(Type, Key, M) :-
    findall(V, ( event(I, _, _, Type, _, _), '$meta'(I, Key, V), number(V) ), Vs),
    Vs \== [],
    max_of(Vs, M).

%% count_events(+Type, -N): how many Type events the window holds.
count_events(Type, N) :-
    findall(I, event(I, _, _, Type, _, _), Is),
    length(Is, N).

%% services(-Services): the services with availability observations in
%% the window.
services(Ss) :-
    window(F, T),
    findall(S, ( '$probe'(S, Ts, _, _), Ts >= F, Ts < T ), L),
    sort(L, Ss).

%% Adds loaded facts; used by the host.
'$zk_add'(Fs) :- catch('$zk_add_'(Fs), _, fail).
'$zk_add_'([]).
'$zk_add_'([F|Fs]) :- assertz(F), '$zk_add_'(Fs).

%% Runs the goal read from Chars under an inference limit; used by the host.
%% Status is `true` or `!` (an answer), `inference_limit_exceeded`, or
%% exception(Ball). Every exception is caught here: one that reached the
%% top of Scryer's library interface would stay in the machine and be
%% reported again by every later query.
'$zk_answer'(Chars, Limit, Vs, Used, Status) :-
    bb_b_put('$zk_used', []),
    catch('$zk_call'(Chars, Limit, Vs, Status), Ball, Status = exception(Ball)),
    (   Status = exception(_) -> Used = [] ; bb_get('$zk_used', Used) ).

'$zk_call'(Chars, Limit, Vs, Status) :-
    read_term_from_chars(Chars, G, [variable_names(Vs)]),
    call_with_inference_limit(G, Limit, Status).
