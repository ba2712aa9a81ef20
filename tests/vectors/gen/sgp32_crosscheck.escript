#!/usr/bin/env escript
%% Cross-checks tests/vectors/sgp32/*.hex against Erlang/OTP asn1, an ASN.1 compiler
%% independent of provline: every vector marked "erlang: same" must decode with the type named
%% in its "asn1:" header and re-encode to the identical bytes. Vectors marked "double-tag"
%% must NOT round-trip (asn1ct puts a second tag on a tagged CHOICE type carried under a tag,
%% EIM.md §1.8; provline follows asn1c and X.680 §31.2.7 there).
%% Usage (Debian: apt-get install erlang-base erlang-asn1):
%%   cd $TMP && cp shared/asn1/*.asn . && for m in PKIX1Explicit88 PKIX1Implicit88 \
%%     PEDefinitions RSPDefinitions SGP32Definitions; do erlc -bber +der $m.asn; done
%%   escript sgp32_crosscheck.escript $TMP REPO_ROOT
main([BeamDir, Root]) ->
    true = code:add_path(BeamDir),
    Dir = Root ++ "/tests/vectors/sgp32",
    {ok, Files} = file:list_dir(Dir),
    Results = [check(Dir ++ "/" ++ F) || F <- lists:sort(Files), lists:suffix(".hex", F)],
    Bad = [R || R <- Results, element(1, R) =:= fail],
    [io:format("~s~n", [M]) || {_, M} <- Results],
    io:format("~p vectors, ~p mismatches~n", [length(Results), length(Bad)]),
    halt(case Bad of [] -> 0; _ -> 1 end).

check(Path) ->
    {ok, Text} = file:read_file(Path),
    Lines = string:split(binary_to_list(Text), "\n", all),
    Hdr = fun(Key) ->
                  case [string:trim(lists:nthtail(length(Key), L)) || L <- Lines,
                                                                     lists:prefix(Key, L)] of
                      [V | _] -> V;
                      [] -> ""
                  end
          end,
    Hex = lists:append([hexpart(L) || L <- Lines, not lists:prefix("#", L)]),
    Bin = binary:decode_hex(list_to_binary(Hex)),
    Type = list_to_atom(Hdr("# asn1: ")),
    Name = filename:basename(Path),
    case Hdr("# erlang: ") of
        "same" ->
            case catch 'SGP32Definitions':decode(Type, Bin) of
                {ok, V} ->
                    case 'SGP32Definitions':encode(Type, V) of
                        {ok, Bin} -> {ok, "ok       " ++ Name};
                        {ok, Other} -> {fail, "MISMATCH " ++ Name ++ " erlang " ++
                                            binary_to_list(binary:encode_hex(Other))}
                    end;
                E -> {fail, io_lib:format("DECODE   ~s ~p", [Name, E])}
            end;
        "double-tag" ->
            case catch 'SGP32Definitions':decode(Type, Bin) of
                {ok, V} ->
                    case 'SGP32Definitions':encode(Type, V) of
                        {ok, Bin} -> {fail, "UNEXPECTED same bytes " ++ Name};
                        {ok, _} -> {ok, "differs  " ++ Name ++ " (asn1ct double tag, expected)"}
                    end;
                _ -> {ok, "differs  " ++ Name ++ " (asn1ct rejects one tag, expected)"}
            end;
        _ ->
            {ok, "skipped  " ++ Name}
    end.

hexpart(Line) ->
    Code = case string:split(Line, "#") of [C | _] -> C; [] -> "" end,
    [C || C <- Code, C =/= $\s, C =/= $\t, C =/= $\r].
