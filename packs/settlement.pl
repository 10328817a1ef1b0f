% zkaudit compliance pack: proof-market settlement (zkaudit_app::settle).
%
% Evidence: `settlement` events, one per step of a job, with metadata
%   event.action      accept | pay | refund | challenge_rejected | slash
%   event.reason      why, in words
%   zkaudit.settlement.job, .buyer, .prover, .price, .collateral (accept),
%   zkaudit.settlement.cause     valid_proof | invalid_proof | deadline_missed | challenge_upheld,
%                                and for `slash` (stake taken outside a job) downtime | forged_attestation
%   zkaudit.settlement.verdict   valid | invalid (where a receipt was verified), forged (attestation evidence)
%   zkaudit.settlement.receipt   the receipt's SHA-256 (also the event's input digest)
%   zkaudit.settlement.split     [Prover, Treasury, Insurance] (pay)
%   zkaudit.settlement.slashed, .challenger, .challenger_reward (refund)
% and `prover` events of the registry (zkaudit_app::provers): a `probe` with
%   zkaudit.prover.reachable false is what a downtime slash rests on.
% Amounts are integers in the settlement ledger's unit (e.g. msat).

:- discontiguous(check/3).
% No thresholds: the rules are exact.
:- dynamic(param/2).

pack(settlement, '1.1.0', 'Proof-market settlement: every payment rests on a valid receipt, every slash on a failed verification, a missed deadline, a recorded outage or a forged attestation, and the amounts reconcile').

rule(paid_on_valid_receipt, 'Every posted payment rests on a receipt that verified, after the job was accepted, once per job').
rule(slash_has_cause, 'Every refund and slash rests on a failed verification, an upheld challenge or a missed deadline; every slash outside a job on a recorded outage or a forged attestation').
rule(balances_reconcile, 'Each payment splits exactly the price, each slash is at most the collateral locked, and each challenger reward at most the slash').

settlement(I, Action, Job) :-
    event(I, _, _, settlement, _, _),
    '$meta'(I, 'event.action', Action),
    '$meta'(I, 'zkaudit.settlement.job', Job).

% accepted_before(+Job, +Index): Job's accept event came before event Index.
accepted_before(Job, I, A) :-
    settlement(A, accept, Job),
    '$ev'(A, TA, _, _, _, _), '$ev'(I, TI, _, _, _, _),
    TA =< TI.

check(paid_on_valid_receipt, Used, Violations) :-
    findall(r(Js, V),
            ( settlement(I, pay, Job),
              (   \+ '$meta'(I, 'zkaudit.settlement.verdict', valid) -> Js = [I], V = violation(I, paid_without_valid_verdict(Job))
              ;   \+ '$meta'(I, 'zkaudit.settlement.receipt', _) -> Js = [I], V = violation(I, paid_without_receipt(Job))
              ;   \+ accepted_before(Job, I, _) -> Js = [I], V = violation(I, paid_but_never_accepted(Job))
              ;   settlement(J, Other, Job), J \== I, member(Other, [pay, refund]) -> Js = [I, J], V = violation(I, settled_twice(Job, Other))
              ;   accepted_before(Job, I, A), Js = [I, A], V = ok
              ) ),
            Rs),
    settle_results(Rs, Used, Violations).

check(slash_has_cause, Used, Violations) :-
    findall(r(Js, V),
            ( settlement(I, refund, Job),
              (   '$meta'(I, 'zkaudit.settlement.cause', C) -> true ; C = none ),
              (   \+ accepted_before(Job, I, _) -> Js = [I], V = violation(I, refunded_but_never_accepted(Job))
              ;   member(C, [invalid_proof, challenge_upheld]), \+ '$meta'(I, 'zkaudit.settlement.verdict', invalid)
                  -> Js = [I], V = violation(I, slash_without_failed_verification(Job, C))
              ;   C == challenge_upheld, \+ '$meta'(I, 'zkaudit.settlement.challenger', _)
                  -> Js = [I], V = violation(I, challenge_without_challenger(Job))
              ;   \+ member(C, [invalid_proof, challenge_upheld, deadline_missed]) -> Js = [I], V = violation(I, slash_without_cause(Job, C))
              ;   accepted_before(Job, I, A), Js = [I, A], V = ok
              ) ),
            Rs0),
    findall(r(Js, V),
            ( settlement(I, slash, Ref),
              '$meta'(I, 'zkaudit.settlement.prover', P),
              (   '$meta'(I, 'zkaudit.settlement.cause', C) -> true ; C = none ),
              (   C == downtime
              ->  (   seen_down_before(P, I, D) -> Js = [I, D], V = ok
                  ;   Js = [I], V = violation(I, downtime_slash_without_outage(Ref, P))
                  )
              ;   C == forged_attestation
              ->  (   '$meta'(I, 'zkaudit.settlement.verdict', forged) -> Js = [I], V = ok
                  ;   Js = [I], V = violation(I, forgery_slash_without_verdict(Ref, P))
                  )
              ;   Js = [I], V = violation(I, slash_without_cause(Ref, C))
              ) ),
            Rs1),
    append(Rs0, Rs1, Rs),
    settle_results(Rs, Used, Violations).

% seen_down_before(+Prover, +Index, -D): a probe found Prover's endpoint
% unreachable (event D) no later than event Index.
seen_down_before(P, I, D) :-
    event(D, _, _, prover, _, _),
    '$meta'(D, 'event.action', probe),
    '$meta'(D, 'zkaudit.prover.key', P),
    '$meta'(D, 'zkaudit.prover.reachable', false),
    '$ev'(D, TD, _, _, _, _), '$ev'(I, TI, _, _, _, _),
    TD =< TI.

check(balances_reconcile, Used, Violations) :-
    findall(r(Js, V),
            ( settlement(I, Action, Job), member(Action, [pay, refund]),
              '$meta'(I, 'zkaudit.settlement.price', Price),
              (   Action == pay
              ->  Js = [I],
                  (   '$meta'(I, 'zkaudit.settlement.split', [P, T, N]), Sum is P + T + N
                  ->  ( Sum =:= Price -> V = ok ; V = violation(I, split_is_not_the_price(Job, Sum, Price)) )
                  ;   V = violation(I, paid_without_split(Job))
                  )
              ;   '$meta'(I, 'zkaudit.settlement.slashed', Slashed),
                  (   '$meta'(I, 'zkaudit.settlement.challenger_reward', R) -> true ; R = 0 ),
                  (   accepted_before(Job, I, A), '$meta'(A, 'zkaudit.settlement.collateral', Locked) -> Js = [I, A] ; Js = [I], Locked = 0 ),
                  (   Slashed > Locked -> V = violation(I, slashed_more_than_locked(Job, Slashed, Locked))
                  ;   R > Slashed -> V = violation(I, reward_more_than_slashed(Job, R, Slashed))
                  ;   V = ok
                  )
              ) ),
            Rs),
    settle_results(Rs, Used, Violations).

settle_results(Rs, Used, Violations) :-
    findall(J, ( member(r(Js, _), Rs), member(J, Js) ), Used0),
    sort(Used0, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Rs), Vs0),
    sort(Vs0, Violations).
