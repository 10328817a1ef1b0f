% zkaudit compliance pack: LLM calls through `zkaudit llm-gateway`.
%
% Evidence (event types and metadata, written by the gateway):
%   llm_gateway_start / llm_gateway_stop   meta: service.instance.id, zkaudit.llm.calls (stop)
%   llm_policy    input: the policy digest; meta: zkaudit.llm.models.allow,
%                 zkaudit.llm.rate_limits.requests_per_minute
%   llm_call      meta: event.id, user.id, gen_ai.request.model, gen_ai.response.model,
%                 http.response.status_code, zkaudit.llm.completion, zkaudit.llm.seq,
%                 zkaudit.llm.policy.digest, .decisions, zkaudit.llm.pii.findings

:- discontiguous(check/3).

pack(llm, '1.0.0', 'LLM calls: allowed models only, rate limits held, PII blocked or redacted, every call recorded').

% Slack when replaying the rate limiter from event timestamps, in ms: the
% timestamp is taken a few microseconds before the limiter is asked.
param(rate_slack_ms, 100).

rule(allowed_models, 'Every answered call asked for and was served a model its policy allows').
rule(rate_limits, 'No caller exceeded its requests-per-minute limit, and every call over it got 429 and reached no model').
rule(pii_handled, 'Every PII finding was blocked or redacted, and every block stopped the call').
rule(complete_records, 'Every call through each gateway run was recorded, with commitments, status and outcome').

check(allowed_models, Used, Violations) :-
    findall(I, llm_call(I, _, _, _, _, _), Calls),
    findall(r([I, P], V),
            ( member(I, Calls), llm_call(I, _, _, Req, Served, St), St < 400,
              llm_completion(I, complete),
              (   llm_policy_of(I, P), llm_policy(P, _, Allow, _, _)
              ->  (   \+ llm_model_allowed(Req, Allow) -> V = violation(I, requested_model_not_allowed(Req))
                  ;   Served \== none, \+ llm_model_allowed(Served, Allow) -> V = violation(I, served_model_not_allowed(Served))
                  ;   V = ok
                  )
              ;   P = I, V = violation(I, no_policy_event)
              ) ),
            Rs),
    llm_results(Rs, Used, Violations).

check(rate_limits, Used, Violations) :-
    pval(rate_slack_ms, SlackMs),
    Slack is SlackMs * 1000000,
    findall(Tok, llm_call(_, _, Tok, _, _, _), Toks0), sort(Toks0, Toks),
    findall(r(Js, V),
            ( member(Tok, Toks),
              findall(T-I, ( llm_call(I, _, Tok, _, _, _), llm_decision(I, 'rate_limit.requests', allow), '$ev'(I, T, _, _, _, _) ), Allowed0),
              keysort(Allowed0, Allowed),
              gcra_replay(Allowed, Slack, Over),
              findall(I, member(_-I, Allowed), Js0),
              (   Over = [] -> V = ok, Js = Js0
              ;   member(I, Over), Js = [I], V = violation(I, over_requests_per_minute(Tok))
              ) ),
            Rs1),
    findall(r([I], V),
            ( llm_call(I, _, _, _, Served, St), llm_decision(I, 'rate_limit.requests', deny),
              (   St =\= 429 -> V = violation(I, denied_but_status(St))
              ;   Served \== none -> V = violation(I, denied_but_served(Served))
              ;   V = ok
              ) ),
            Rs2),
    append(Rs1, Rs2, Rs),
    llm_results(Rs, Used, Violations).

% gcra_replay(+TimedCalls, +SlackNs, -Over): replays GCRA (the limiter the
% gateway uses: emission interval 60 s / rpm, a burst of rpm) over the
% calls it let through, in time order, under the policy in force for each;
% Over are the calls the replay would have refused.
gcra_replay(Calls, Slack, Over) :- gcra_replay_(Calls, Slack, none, Over).

gcra_replay_([], _, _, []).
gcra_replay_([T-I|Cs], Slack, State, Over) :-
    (   llm_policy_of(I, P), llm_policy(P, D, _, Rpm, _), Rpm > 0
    ->  Interval is 60000000000 // Rpm,
        Tau is Interval * (Rpm - 1),
        (   State = tat(D, Tat0) -> true ; Tat0 = T ),
        Tat is max(Tat0, T),
        (   Tat - T > Tau + Slack -> Over = [I|Over1], State1 = tat(D, Tat)
        ;   Over = Over1, Next is Tat + Interval, State1 = tat(D, Next)
        )
    ;   Over = Over1, State1 = none
    ),
    gcra_replay_(Cs, Slack, State1, Over1).

check(pii_handled, Used, Violations) :-
    findall(r([I], V),
            ( llm_pii(I, W, E, N, A),
              (   A == flag -> V = violation(I, pii_only_flagged(W, E, N))
              ;   A == block, llm_completion(I, C), \+ member(C, [rejected, blocked]) -> V = violation(I, block_did_not_stop(W, E, C))
              ;   V = ok
              ) ),
            Rs),
    llm_results(Rs, Used, Violations).

check(complete_records, Used, Violations) :-
    findall(X, ( event(S, _, _, llm_gateway_start, _, _), '$meta'(S, 'service.instance.id', X) ), Xs),
    sort(Xs, Runs),
    findall(r(Js, V),
            ( member(X, Runs),
              event(S, _, _, llm_gateway_start, _, _), '$meta'(S, 'service.instance.id', X),
              findall(Q-I, ( event(I, _, _, llm_call, _, _), '$meta'(I, 'service.instance.id', X), '$meta'(I, 'zkaudit.llm.seq', Q) ), Seqs0),
              keysort(Seqs0, Seqs),
              findall(I, member(_-I, Seqs), Is),
              findall(Q, member(Q-_, Seqs), Qs),
              length(Qs, Count),
              (   event(E, _, _, llm_gateway_stop, _, _), '$meta'(E, 'service.instance.id', X), '$meta'(E, 'zkaudit.llm.calls', Said)
              ->  Js = [S, E|Is]
              ;   Js = [S|Is], Said = Count
              ),
              one_to(Count, Expected),
              (   Qs \== Expected -> V = violation(S, calls_missing(X, recorded(Count), sequence_gaps))
              ;   Count =\= Said -> V = violation(S, calls_missing(X, recorded(Count), said(Said)))
              ;   member(I, Is), \+ llm_call_complete(I) -> V = violation(I, incomplete_record)
              ;   V = ok
              ) ),
            Rs),
    llm_results(Rs, Used, Violations).

% one_to(+N, -List): [1, 2, ..., N].
one_to(N, L) :- one_to_(1, N, L).
one_to_(K, N, []) :- K > N, !.
one_to_(K, N, [K|L]) :- K1 is K + 1, one_to_(K1, N, L).

llm_call_complete(I) :-
    '$meta'(I, 'http.response.status_code', _),
    '$meta'(I, 'zkaudit.llm.completion', _),
    '$meta'(I, 'zkaudit.llm.policy.digest', _),
    '$meta'(I, 'user.id', _),
    event(I, _, _, _, In, Out), In \== Out.

llm_results(Rs, Used, Violations) :-
    findall(J, ( member(r(Js, _), Rs), member(J, Js) ), Used0),
    sort(Used0, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Rs), Vs0),
    sort(Vs0, Violations).
