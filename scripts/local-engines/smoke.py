"""End-to-end smoke check and measurement of the local engines (scripts/local-engines/start.sh), driving each
endpoint exactly as voicebench's pipeline client does (src/targets/pipeline/{stt,llm,tts}.rs):

  STT  POST /v1/audio/transcriptions, multipart fields model + response_format=json (+ stream=true) and file
       "turn.wav" (audio/wav), for every corpus caller line of one voice (audio-corpus/manifest.json), with both
       profiles (whisper-base, pocketsphinx), json and SSE. Latency = request sent -> response complete; for SSE also
       -> first transcript.text.delta. WER against the line's text (numbers normalised to words).
  LLM  POST /v1/chat/completions, stream=true, stream_options.include_usage, the scenario's tools and
       tool_choice "auto" (what the client sends), the scenario's instructions as the system message, and the call so
       far as history (the script's ideal turns: caller line, expected tool calls with the scenario's results, the
       scripted agent reply). TTFT = first chunk with non-empty delta.content or the first tool_calls delta.
       Tool-call correctness per turn: a turn that expects a call must make it with the right function and
       arguments (the scenario's matchers); a turn that expects none must not call a tool.
       Also measured: the forced mode (tool_choice "required", parallel_tool_calls false, assistant prefill
       "<tool_call>\\n"), the only way SmolLM2-135M emits tool calls, on the turns that expect one.
  TTS  POST /v1/audio/speech {model, input, voice, response_format: pcm}, Accept: application/octet-stream, for the
       caller lines' texts and the agent replies; TTFB = request sent -> first body byte; RTF = total / audio length.
  Chain  per caller line: whisper-base transcript -> LLM (auto) until its first sentence -> TTS of that sentence,
       first byte: the time from the end of the caller's upload to the first agent audio (no endpointing wait).

Prints p50/p95 (linear interpolation) per measure and writes every sample as JSON (--out).
Standard library only; loopback only. Usage: see smoke.sh."""

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import time
import tomllib
import urllib.parse
from pathlib import Path

BOUNDARY = "voicebench-7d1c0e5fa3b24f96"  # the client's boundary, so the server parses the same bytes


# ---- HTTP --------------------------------------------------------------------------------------------------------------
def split_url(base):
    u = urllib.parse.urlparse(base)
    return u.hostname, u.port or 80, u.path.rstrip("/")


def post(base, path, body, headers):
    host, port, prefix = split_url(base)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.request("POST", prefix + path, body=body, headers=headers)
    return conn, conn.getresponse()


def read_stream(resp):
    """Yields (t, bytes) for each piece of body as it arrives."""
    while True:
        b = resp.read1(65536)
        if not b:
            return
        yield time.monotonic(), b


def sse_events(resp):
    """Yields (t, data string) per SSE event."""
    buf = b""
    for t, b in read_stream(resp):
        buf += b
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if line.startswith(b"data:"):
                    yield t, line[5:].strip().decode()


def multipart(fields, wav):
    out = b""
    for k, v in fields:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (BOUNDARY, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"turn.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n" % BOUNDARY).encode()
    return out + wav + ("\r\n--%s--\r\n" % BOUNDARY).encode()


# ---- STT -----------------------------------------------------------------------------------------------------------
def transcribe(base, wav, model, stream):
    fields = [("model", model), ("response_format", "json")] + ([("stream", "true")] if stream else [])
    body = multipart(fields, wav)
    t0 = time.monotonic()
    conn, resp = post(base, "/audio/transcriptions", body,
                      {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY})
    if resp.status != 200:
        raise RuntimeError("STT %d: %s" % (resp.status, resp.read()[:300]))
    first = None
    if stream:
        text = None
        for t, data in sse_events(resp):
            ev = json.loads(data)
            if ev["type"] == "transcript.text.delta" and first is None:
                first = t - t0
            if ev["type"] == "transcript.text.done":
                text = ev["text"]
        if text is None:
            raise RuntimeError("SSE ended without transcript.text.done")
    else:
        text = json.loads(resp.read())["text"]
    total = time.monotonic() - t0
    conn.close()
    return {"text": text, "total_s": total, "first_delta_s": first}


ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORD = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth", "6th": "sixth",
       "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth"}


def num_words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    return " ".join(ONES[int(d)] for d in str(n))


def normalise(text):
    t = text.lower().replace("p.m.", " pm ").replace("a.m.", " am ")
    t = re.sub(r"\b(\d{1,2})(st|nd|rd|th)\b", lambda m: ORD.get(m.group(0), m.group(1)), t)
    t = re.sub(r"\b(\d{1,2}):(\d\d)\b", lambda m: num_words(int(m.group(1))) + " "
               + ("" if m.group(2) == "00" else num_words(int(m.group(2)))), t)
    t = re.sub(r"(\d)(am|pm)\b", r"\1 \2", t)
    t = re.sub(r"\d{3,}", lambda m: " ".join(ONES[int(d)] for d in m.group(0)), t)
    t = re.sub(r"\d+", lambda m: num_words(int(m.group(0))), t)
    t = t.replace("mm-hmm", "mmhmm").replace("mm hmm", "mmhmm")
    return re.sub(r"[^a-z' ]+", " ", t).split()


def wer(ref, hyp):
    r, h = normalise(ref), normalise(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


# ---- LLM -----------------------------------------------------------------------------------------------------------
def chat(base, model, messages, tools, mode, stop_at_sentence=False):
    body = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    if tools:
        body["tools"] = tools
        body["tool_choice"] = "auto"
    if mode == "forced":
        body["tool_choice"] = "required"
        body["parallel_tool_calls"] = False
        body["messages"] = messages + [{"role": "assistant", "content": "<tool_call>\n"}]
    t0 = time.monotonic()
    conn, resp = post(base, "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    if resp.status != 200:
        raise RuntimeError("LLM %d: %s" % (resp.status, resp.read()[:300]))
    first = first_tool = sentence = None
    content, calls, finish, usage = "", {}, None, None
    for t, data in sse_events(resp):
        if data == "[DONE]":
            break
        ch = json.loads(data)
        if ch.get("usage"):
            usage = ch["usage"]
        for c in ch.get("choices") or []:
            d = c.get("delta") or {}
            if d.get("content"):
                if first is None:
                    first = t - t0
                content += d["content"]
                if sentence is None and re.search(r"[.!?](\s|$)", content):
                    sentence = t - t0
                    if stop_at_sentence:
                        conn.close()  # the pipeline would start TTS here; we stop reading, as a barge-in would
                        return {"ttft_s": first, "sentence_s": sentence, "content": content, "tool_calls": [],
                                "finish": "cut", "usage": None, "total_s": t - t0}
            for tc in d.get("tool_calls") or []:
                if first_tool is None:
                    first_tool = t - t0
                slot = calls.setdefault(tc.get("index", 0), {"name": "", "arguments": ""})
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if c.get("finish_reason"):
                finish = c["finish_reason"]
    total = time.monotonic() - t0
    conn.close()
    if sentence is None and content.strip():
        sentence = total
    return {"ttft_s": first, "first_tool_s": first_tool, "sentence_s": sentence, "content": content,
            "tool_calls": [calls[k] for k in sorted(calls)], "finish": finish, "usage": usage, "total_s": total}


def norm_time(v):
    s = str(v).strip().lower().replace(".", "")
    m = re.match(r"^(\d{1,2})(?::(\d\d))?(?::\d\d)?\s*(am|pm)?$", s)
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    if m.group(3) == "pm" and h < 12:
        h += 12
    return "%02d:%02d" % (h, mi)


def match(exp, got):
    """The scenario's argument matchers (docs/scenario.md): plain values, number, date, time, any, ci, regex."""
    if isinstance(exp, dict):
        if "any" in exp:
            return got is not None
        if got is None:
            return False
        if "number" in exp:
            try:
                return float(got) == float(exp["number"])
            except (TypeError, ValueError):
                return False
        if "date" in exp:
            return str(got).strip() == exp["date"]
        if "time" in exp:
            return norm_time(got) == exp["time"]
        if "ci" in exp:
            return str(got).strip().lower() == exp["ci"].lower()
        if "regex" in exp:
            return re.search(exp["regex"], str(got)) is not None
        return False
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        try:
            return float(got) == float(exp)
        except (TypeError, ValueError):
            return False
    return got == exp


def ideal_args(tc):
    out = {}
    for k, v in tc.get("args", {}).items():
        if isinstance(v, dict):
            v = v.get("number", v.get("date", v.get("time", v.get("ci", "19:00" if "any" in v else None))))
        out[k] = v
    out.update(tc.get("sim_args", {}))
    return out


def tool_result(tool, args):
    for r in tool.get("result", []):
        if all(match(m, args.get(k)) for k, m in r.get("when", {}).items()):
            return r["output"]
    return tool.get("default_result", {})


def judge(expected, got):
    """-> dict(valid, right_name, right_args, correct) for one turn."""
    if not expected:
        return {"expects_call": False, "called": bool(got), "correct": not got}
    e = expected[0]
    res = {"expects_call": True, "called": bool(got), "valid": False, "right_name": False, "right_args": False}
    if got:
        g = got[0]
        try:
            args = json.loads(g["arguments"] or "{}")
            res["valid"] = isinstance(args, dict)
        except ValueError:
            args = {}
        res["right_name"] = g["name"] == e["name"]
        res["right_args"] = res["right_name"] and res["valid"] and all(
            match(m, args.get(k)) for k, m in e.get("args", {}).items())
        res["args"] = g["arguments"]
        res["name"] = g["name"]
    res["correct"] = res["right_args"]
    return res


# ---- TTS -----------------------------------------------------------------------------------------------------------
def speak(base, text, voice):
    body = json.dumps({"model": "piper", "input": text, "voice": voice, "response_format": "pcm"}).encode()
    t0 = time.monotonic()
    conn, resp = post(base, "/audio/speech", body,
                      {"Content-Type": "application/json", "Accept": "application/octet-stream"})
    if resp.status != 200:
        raise RuntimeError("TTS %d: %s" % (resp.status, resp.read()[:300]))
    first, n = None, 0
    for t, b in read_stream(resp):
        if first is None:
            first = t - t0
        n += len(b)
    total = time.monotonic() - t0
    conn.close()
    rate = int(resp.getheader("X-Sample-Rate") or 24000)
    audio = n / 2 / rate
    return {"ttfb_s": first, "total_s": total, "audio_s": audio, "rtf": total / audio if audio else None}


# ---- report --------------------------------------------------------------------------------------------------------
def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (k - lo)


def row(name, xs, unit_ms=True):
    xs = [x for x in xs if x is not None]
    if not xs:
        print("  %-44s   n=0" % name)
        return
    f = (lambda v: "%7.0f ms" % (v * 1000)) if unit_ms else (lambda v: "%7.3f   " % v)
    print("  %-44s n=%-3d p50 %s  p95 %s  min %s  max %s" % (name, len(xs), f(pct(xs, 50)), f(pct(xs, 95)),
                                                              f(min(xs)), f(max(xs))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stt", default="http://127.0.0.1:8091/v1")
    ap.add_argument("--llm", default="http://127.0.0.1:8089/v1")
    ap.add_argument("--tts", default="http://127.0.0.1:8092/v1")
    ap.add_argument("--llm-model", default="smollm2-135m-instruct")
    ap.add_argument("--voice", default="joe", help="corpus caller voice whose lines are sent to STT")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--corpus", default="audio-corpus")
    ap.add_argument("--scenario", default="scenarios/booking.toml", help="tools, instructions and turns")
    ap.add_argument("--only", default="stt,llm,tts,chain", help="comma list of stages to run")
    ap.add_argument("--out", help="write every sample here as JSON")
    a = ap.parse_args()
    only = set(a.only.split(","))

    corpus = Path(a.corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    lines = tomllib.loads((corpus / "lines.toml").read_text())
    scenario = tomllib.loads(Path(a.scenario).read_text())
    utts = [u for u in manifest["utterances"]
            if u["role"] == "caller" and u["voice"] == a.voice and not u.get("variant_of")]
    if not utts:
        sys.exit("no caller lines for voice %r in %s" % (a.voice, corpus / "manifest.json"))
    wavs = {u["line"]: (corpus / u["file"]).read_bytes() for u in utts}
    texts = {l["id"]: l.get("text") or " ".join(l.get("parts", [])) for l in lines["line"]}
    agent_lines = [dict(l, text=texts[l["id"]]) for l in lines["line"] if l["role"] == "agent"]
    tools_by_name = {t["name"]: t for t in scenario["agent"]["tool"]}
    tools = [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                "parameters": t["parameters"]}} for t in scenario["agent"]["tool"]]
    system = {"role": "system", "content": scenario["agent"].get("instructions", "")}
    turns = scenario["turn"]

    def history(i):
        """The ideal call before turn i: caller lines, expected tool calls with their results, scripted replies."""
        msgs = [system]
        for j, t in enumerate(turns[:i]):
            msgs.append({"role": "user", "content": texts[t["utterance"]]})
            for k, tc in enumerate(t.get("tool_call", [])):
                args = ideal_args(tc)
                cid = "call_%d_%d" % (j, k)
                msgs.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": tc["name"], "arguments": json.dumps(args)}}]})
                msgs.append({"role": "tool", "tool_call_id": cid,
                             "content": json.dumps(tool_result(tools_by_name[tc["name"]], args))})
            if t.get("reply"):
                msgs.append({"role": "assistant", "content": texts[t["reply"]]})
        return msgs

    S = {"stt": [], "llm": [], "tts": [], "chain": []}
    load0 = os.getloadavg()
    print("voicebench local engines smoke: %d caller lines (voice %s) x %d reps; STT %s, LLM %s, TTS %s; "
          "load average %.1f on %d cores" % (len(utts), a.voice, a.reps, a.stt, a.llm, a.tts, load0[0],
                                             os.cpu_count()), flush=True)
    for rep in range(a.reps):
        print("rep %d/%d" % (rep + 1, a.reps), flush=True)
        if "stt" in only:
            for model in ("whisper-base", "pocketsphinx"):
                for stream in (False, True):
                    for u in utts:
                        r = transcribe(a.stt, wavs[u["line"]], model, stream)
                        e, n = wer(u["text"], r["text"])
                        S["stt"].append(dict(r, line=u["line"], model=model, stream=stream, errors=e, words=n,
                                             audio_s=u["duration_ms"] / 1000))
        if "llm" in only:
            for i, t in enumerate(turns):
                msgs = history(i) + [{"role": "user", "content": texts[t["utterance"]]}]
                expected = t.get("tool_call", [])
                r = chat(a.llm, a.llm_model, msgs, tools, "auto")
                S["llm"].append(dict(r, line=t["utterance"], mode="auto", judge=judge(expected, r["tool_calls"])))
                if expected:
                    r = chat(a.llm, a.llm_model, msgs, tools, "forced")
                    S["llm"].append(dict(r, line=t["utterance"], mode="forced",
                                         judge=judge(expected, r["tool_calls"])))
        if "tts" in only:
            for kind, items in (("caller", [(u["line"], u["text"]) for u in utts]),
                                ("agent", [(l["id"], l["text"]) for l in agent_lines])):
                for lid, text in items:
                    S["tts"].append(dict(speak(a.tts, text, "joe"), line=lid, kind=kind))
        if "chain" in only:
            for i, t in enumerate(turns):
                u = next(x for x in utts if x["line"] == t["utterance"])
                t0 = time.monotonic()
                s = transcribe(a.stt, wavs[u["line"]], "whisper-base", False)
                msgs = history(i) + [{"role": "user", "content": s["text"]}]
                r = chat(a.llm, a.llm_model, msgs, tools, "auto", stop_at_sentence=True)
                rec = {"line": t["utterance"], "stt_s": s["total_s"], "llm_sentence_s": r["sentence_s"],
                       "tool_calls": r["tool_calls"]}
                if r["content"].strip():
                    first = re.split(r"(?<=[.!?])\s", r["content"].strip(), maxsplit=1)[0]
                    sp = speak(a.tts, first, "joe")
                    rec.update(tts_ttfb_s=sp["ttfb_s"], ttfa_s=time.monotonic() - t0 - sp["total_s"] + sp["ttfb_s"],
                               first_sentence=first)
                S["chain"].append(rec)

    # ---- summary ----
    S["load_average"] = {"start": load0, "end": os.getloadavg(), "cores": os.cpu_count()}
    print("\nload average (1/5/15 min) at the end: %.1f %.1f %.1f on %d cores; other work on the machine inflates"
          " every number below" % (*os.getloadavg(), os.cpu_count()))
    if S["stt"]:
        print("\nSTT (request sent -> response complete; %d lines, %.1f-%.1f s of audio each)" % (
            len(utts), min(u["duration_ms"] for u in utts) / 1000, max(u["duration_ms"] for u in utts) / 1000))
        for model in ("whisper-base", "pocketsphinx"):
            for stream in (False, True):
                xs = [r for r in S["stt"] if r["model"] == model and r["stream"] == stream]
                row("%s %s" % (model, "SSE, done" if stream else "json"), [r["total_s"] for r in xs])
                if stream:
                    row("%s SSE, first delta" % model, [r["first_delta_s"] for r in xs])
            xs = [r for r in S["stt"] if r["model"] == model]
            row("%s real-time factor" % model, [r["total_s"] / r["audio_s"] for r in xs], unit_ms=False)
            print("  %-44s %.1f %% (%d errors / %d words)" % (
                "%s WER" % model, 100 * sum(r["errors"] for r in xs) / sum(r["words"] for r in xs),
                sum(r["errors"] for r in xs), sum(r["words"] for r in xs)))
    if S["llm"]:
        print("\nLLM (streaming chat completion with %d tools, ideal history)" % len(tools))
        auto = [r for r in S["llm"] if r["mode"] == "auto"]
        forced = [r for r in S["llm"] if r["mode"] == "forced"]
        row("TTFT, tool_choice auto (content or tool call)", [r["ttft_s"] or r["first_tool_s"] for r in auto])
        row("first sentence, auto", [r["sentence_s"] for r in auto])
        row("complete, auto", [r["total_s"] for r in auto])
        row("tool decision, forced (finish tool_calls)", [r["total_s"] for r in forced])
        tool_turns = [r for r in auto if r["judge"]["expects_call"]]
        talk_turns = [r for r in auto if not r["judge"]["expects_call"]]
        print("  tool turns, auto:   %d/%d called a tool, %d/%d right function, %d/%d right arguments" % (
            sum(r["judge"]["called"] for r in tool_turns), len(tool_turns),
            sum(r["judge"]["right_name"] for r in tool_turns), len(tool_turns),
            sum(r["judge"]["right_args"] for r in tool_turns), len(tool_turns)))
        print("  talk turns, auto:   %d/%d answered without a tool call" % (
            sum(r["judge"]["correct"] for r in talk_turns), len(talk_turns)))
        print("  tool turns, forced: %d/%d valid calls, %d/%d right function, %d/%d right arguments" % (
            sum(r["judge"]["valid"] for r in forced), len(forced), sum(r["judge"]["right_name"] for r in forced),
            len(forced), sum(r["judge"]["right_args"] for r in forced), len(forced)))
        print("  turn-level correctness, auto (as voicebench scores it): %d/%d" % (
            sum(r["judge"]["correct"] for r in auto), len(auto)))
        for r in forced[:len({x["line"] for x in forced})]:
            print("    forced %-12s -> %s(%s)" % (r["line"], r["judge"].get("name"), r["judge"].get("args")))
        for r in auto[:len(turns)]:
            print("    auto   %-12s -> %s" % (r["line"], (r["content"] or "").strip().replace("\n", " ")[:90]
                                             or "tool %s" % r["tool_calls"]))
    if S["tts"]:
        print("\nTTS (request sent -> first body byte; pcm 24 kHz)")
        for kind in ("caller", "agent"):
            xs = [r for r in S["tts"] if r["kind"] == kind]
            row("TTFB, %s lines" % kind, [r["ttfb_s"] for r in xs])
            row("complete, %s lines" % kind, [r["total_s"] for r in xs])
            row("real-time factor, %s lines" % kind, [r["rtf"] for r in xs], unit_ms=False)
    if S["chain"]:
        print("\nChain (upload complete -> whisper-base -> LLM first sentence -> TTS first byte)")
        row("STT", [r["stt_s"] for r in S["chain"]])
        row("LLM first sentence", [r["llm_sentence_s"] for r in S["chain"]])
        row("TTS first byte", [r.get("tts_ttfb_s") for r in S["chain"]])
        row("time to first audio (no endpointing wait)", [r.get("ttfa_s") for r in S["chain"]])
    if a.out:
        Path(a.out).write_text(json.dumps(S, indent=1))
        print("\nsamples: %s" % a.out)
    bad = [r for r in S["stt"] if not r["text"]] + [r for r in S["tts"] if not r["audio_s"]]
    if bad:
        print("FAIL: %d empty transcripts or empty audio" % len(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
