"""A mixed, deterministic prompt set for the estimator's accuracy figures.

Prose (package long descriptions), source code, JSON and multilingual text, taken from the
installed environment so no file is vendored. Used by ``bench_estimate.py`` and the tests.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

__all__ = ["mixed_prompts"]

_MULTILINGUAL = (
    "Der schnelle braune Fuchs springt über den faulen Hund. Die Rechnung über 1.234,56 € "
    "wurde am 3. März bezahlt, aber die Mahnung kam trotzdem.",
    "Le vif renard brun saute par-dessus le chien paresseux. L'équipe a livré la version "
    "2.3 hier soir, après une longue semaine de tests.",
    "El rápido zorro marrón salta sobre el perro perezoso. ¿Cuántos tokens cuesta esta "
    "frase en español? Más de lo que parece.",
    "敏捷的棕色狐狸跳过了懒狗。这个模型每百万个输入令牌收费三美元，输出令牌收费十五美元。",
    "素早い茶色の狐が怠け者の犬を飛び越えた。今日の会議は午後三時に始まります。",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Счёт за март составил 42 доллара.",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다. 오늘 회의는 오후 세 시에 시작합니다.",
)


def _chunks(text: str, size: int, limit: int) -> list[str]:
    out = []
    for start in range(0, len(text), size):
        piece = text[start : start + size].strip()
        if len(piece) > size // 4:
            out.append(piece)
        if len(out) >= limit:
            break
    return out


def _prose(limit: int) -> list[str]:
    texts: list[str] = []
    for name in ("duckdb", "click", "httpx", "pydantic", "tiktoken", "rich", "hypothesis"):
        try:
            body = importlib.metadata.metadata(name).get_payload()  # type: ignore[attr-defined]
        except Exception:
            continue
        if isinstance(body, str) and len(body) > 500:
            texts.extend(_chunks(body, 1500, 3))
    return texts[:limit]


def _module_file(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin) if spec is not None and spec.origin else None


def _code(limit: int) -> list[str]:
    texts: list[str] = []
    for module in ("json.decoder", "click.core", "tiktoken.core", "decimal", "pathlib"):
        path = _module_file(module)
        if path is not None and path.suffix == ".py":
            texts.extend(_chunks(path.read_text(encoding="utf-8"), 2000, 2))
    return texts[:limit]


def _json_payloads() -> list[str]:
    rows = [
        {"id": i, "user": f"user-{i}", "tags": ["a", "b"], "amount": i * 3.25, "ok": i % 2 == 0}
        for i in range(40)
    ]
    chat = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Summarize the attached report."}] * 5,
        "temperature": 0.2,
    }
    return [json.dumps(rows), json.dumps(chat, indent=2)]


def mixed_prompts() -> list[tuple[str, str]]:
    """(kind, text) pairs: prose, code, json and multilingual prompts."""
    prompts = [("prose", t) for t in _prose(12)]
    prompts += [("code", t) for t in _code(8)]
    prompts += [("json", t) for t in _json_payloads()]
    prompts += [("multilingual", t) for t in _MULTILINGUAL]
    prompts += [("chat", "Hi! Can you help me write a short, polite email to my landlord?")]
    return prompts
