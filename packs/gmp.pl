% zkaudit compliance pack: GMP batch records and computerised systems
% (21 CFR Part 11 flavour).
%
% Evidence (event types and metadata):
%   batch_record                                  meta: batch_id, process, operator
%       (input = digest of the materials record, output = digest of the product record;
%        the all-zero digest means "not recorded")
%   system_registered / validation_protocol / validation_report   meta: system
%   change_request / change_approved / change_implemented          meta: change_id

:- discontiguous(check/3).
:- discontiguous(measure/3).

pack(gmp, '1.0.0', 'GMP: complete batch records, validated systems, change control').

param(batch_fields, [batch_id, process, operator]).

rule(batch_records, 'Every batch record has a batch ID, input, process, output, operator and timestamp').
rule(validation, 'Every registered system has a validation protocol and a validation report, in that order').
rule(change_control, 'Every implemented change has a request and an approval, both before it takes effect').

'$zero'('sha256:0000000000000000000000000000000000000000000000000000000000000000').

check(batch_records, Used, Violations) :-
    pval(batch_fields, Fields),
    findall(I, event(I, _, _, batch_record, _, _), Used),
    findall(violation(I, incomplete(Missing)),
            ( member(I, Used),
              '$ev'(I, _, _, _, In, Out),
              findall(F, ( member(F, Fields), \+ '$meta'(I, F, _) ), M0),
              ( '$zero'(In) -> M1 = [input|M0] ; M1 = M0 ),
              ( '$zero'(Out) -> Missing = [output|M1] ; Missing = M1 ),
              Missing \== [] ),
            Violations).

check(validation, Used, Violations) :-
    findall(I, event(I, _, _, system_registered, _, _), Systems),
    findall(V, ( member(I, Systems), '$meta'(I, system, S), '$validated'(S, I, V) ), Results),
    findall(J, ( member(r(Js, _), Results), member(J, Js) ), Used0),
    append(Systems, Used0, Used1), sort(Used1, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Results), Violations).

'$validated'(S, Reg, r(Js, V)) :-
    findall(T-J, ( event(J, T, _, validation_protocol, _, _), '$meta'(J, system, S) ), Ps),
    findall(T-J, ( event(J, T, _, validation_report, _, _), '$meta'(J, system, S) ), Rs),
    findall(J, ( member(_-J, Ps) ; member(_-J, Rs) ), Js),
    (   Ps == [] -> V = violation(Reg, missing(validation_protocol, S))
    ;   Rs == [] -> V = violation(Reg, missing(validation_report, S))
    ;   keysort(Ps, [TP-_|_]), keysort(Rs, RsS), last(RsS, TR-JR), TR < TP ->
        V = violation(JR, report_before_protocol(S))
    ;   V = ok
    ).

check(change_control, Used, Violations) :-
    findall(I, event(I, _, _, change_implemented, _, _), Impl),
    findall(r(Js, V), ( member(I, Impl), '$change'(I, change_request, change_approved, Js, V) ), Results),
    findall(J, ( member(r(Js, _), Results), member(J, Js) ), Used0),
    sort(Used0, Used),
    findall(violation(I, R), member(r(_, violation(I, R)), Results), Violations).

% '$change'(+Impl, +RequestType, +ApprovalType, -Events, -Verdict): the
% request and approval events of the change implemented at Impl.
'$change'(I, ReqT, AppT, [I|Js], V) :-
    '$ev'(I, TI, _, _, _, _),
    (   '$meta'(I, change_id, C) ->
        findall(T-J, ( event(J, T, _, ReqT, _, _), '$meta'(J, change_id, C) ), Rq),
        findall(T-J, ( event(J, T, _, AppT, _, _), '$meta'(J, change_id, C) ), Ap),
        findall(J, ( member(_-J, Rq) ; member(_-J, Ap) ), Js),
        (   Ap == [] -> V = violation(I, no_approval(C))
        ;   keysort(Ap, [TA-_|_]), TA > TI -> V = violation(I, implemented_before_approval(C))
        ;   Rq == [] -> V = violation(I, no_request(C))
        ;   keysort(Rq, [TR-_|_]), keysort(Ap, [TA2-_|_]), TR > TA2 -> V = violation(I, approved_before_request(C))
        ;   V = ok
        )
    ;   Js = [], V = violation(I, missing(change_id))
    ).

% What each rule measured, for reports and the SOC dashboard.
measure(batch_records, batch_records, N) :- count_events(batch_record, N).
measure(change_control, changes_implemented, N) :- count_events(change_implemented, N).
