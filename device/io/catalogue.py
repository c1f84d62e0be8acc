"""Every string the touchscreen shows or speaks to a customer, in zh-CN and en, in one table.

Screens (device.io.touch) and voice prompts (device.io.voice) take their words from here and nowhere
else, so a translation is one edit and a test can check that both languages say everything. The
labels of the five faces come from the site's settings for the middle one (一般 or 基本满意, the
national scheme's word); reason tags are reason codes (1..99) named here, with the site's own
labels for codes 1..5 (the key panel's `reason_labels`) taking precedence in Chinese.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "LANGUAGES",
    "MIDDLE_LABELS",
    "PROMPTS",
    "REASONS",
    "SUBSCORES",
    "TEXT",
    "face_labels",
    "reason_label",
    "text",
]

LANGUAGES: Final = ("zh-CN", "en")

TEXT: Final[dict[str, dict[str, str]]] = {
    "closed": {"zh-CN": "暂停服务", "en": "Window closed"},
    "closed_note": {"zh-CN": "本窗口暂无工作人员", "en": "No one is serving at this window"},
    "idle_title": {"zh-CN": "为您服务", "en": "Serving you"},
    "staff_no": {"zh-CN": "工号", "en": "Staff no."},
    "department": {"zh-CN": "部门", "en": "Department"},
    "counter": {"zh-CN": "窗口", "en": "Window"},
    "invite": {"zh-CN": "请对本次服务进行评价", "en": "Please rate our service"},
    "subscores_title": {"zh-CN": "请为以下方面打分", "en": "How was each of these?"},
    "reasons_title_negative": {"zh-CN": "哪些方面让您不满意？", "en": "What went wrong?"},
    "reasons_title_positive": {"zh-CN": "哪些方面让您满意？", "en": "What went well?"},
    "reasons_title_neutral": {"zh-CN": "请选择原因", "en": "Please tell us why"},
    "reason_required": {"zh-CN": "请选择原因", "en": "Please choose a reason"},
    "callback_title": {"zh-CN": "需要回访吗？请留下电话", "en": "Want a call back? Leave your number"},
    "callback_privacy": {
        "zh-CN": "号码加密保存，仅供服务大厅回访使用",
        "en": "Your number is encrypted, for the service hall's call back only",
    },
    "delete": {"zh-CN": "删除", "en": "Delete"},
    "ok": {"zh-CN": "确定", "en": "OK"},
    "skip": {"zh-CN": "跳过", "en": "Skip"},
    "done": {"zh-CN": "完成", "en": "Done"},
    "next": {"zh-CN": "下一步", "en": "Next"},
    "change": {"zh-CN": "修改评价", "en": "Change rating"},
    "rate_again": {"zh-CN": "请重新评价", "en": "Please rate again"},
    "thanks": {"zh-CN": "感谢您的评价", "en": "Thank you"},
    "thanks_note": {"zh-CN": "祝您生活愉快", "en": "Have a good day"},
    "pairing": {"zh-CN": "配对码", "en": "Pairing code"},
    "pairing_note": {
        "zh-CN": "请管理员在服务大厅系统中输入此配对码",
        "en": "An administrator enters this code at the service hall's system",
    },
    "out_of_service": {"zh-CN": "暂停使用", "en": "Out of service"},
    "out_of_service_note": {"zh-CN": "请联系工作人员", "en": "Please ask a member of staff"},
    "refused": {"zh-CN": "未受理", "en": "Not taken"},
    "wait": {"zh-CN": "请稍候", "en": "One moment"},
    # The language button names the language it switches to, in that language.
    "other_language": {"zh-CN": "EN", "en": "中文"},
    "level_5": {"zh-CN": "非常满意", "en": "Very satisfied"},
    "level_4": {"zh-CN": "满意", "en": "Satisfied"},
    "level_2": {"zh-CN": "不满意", "en": "Dissatisfied"},
    "level_1": {"zh-CN": "非常不满意", "en": "Very dissatisfied"},
}

# The middle face's label: a site says 一般 (general practice) or 基本满意 (the national scheme).
MIDDLE_LABELS: Final[dict[str, dict[str, str]]] = {
    "一般": {"zh-CN": "一般", "en": "Average"},
    "基本满意": {"zh-CN": "基本满意", "en": "Fairly satisfied"},
}

# The national offline indicators, in the order they are asked.
SUBSCORES: Final[dict[str, dict[str, str]]] = {
    "attitude": {"zh-CN": "服务态度", "en": "Attitude"},
    "efficiency": {"zh-CN": "办理效率", "en": "Speed"},
    "competence": {"zh-CN": "业务水平", "en": "Know-how"},
}

# Reason codes a site may list (reasons_negative, default 1..6; reasons_positive, default 51..56).
# 1..5 are the key panel's reasons (its default `reason_labels`), so a record's codes mean the same
# whichever terminal made it; a code not named here shows as "原因 N" / "Reason N".
REASONS: Final[dict[int, dict[str, str]]] = {
    1: {"zh-CN": "等候时间长", "en": "Long wait"},
    2: {"zh-CN": "服务态度差", "en": "Unfriendly"},
    3: {"zh-CN": "业务不熟练", "en": "Unsure of rules"},
    4: {"zh-CN": "流程繁琐", "en": "Too many steps"},
    5: {"zh-CN": "其他", "en": "Other"},
    6: {"zh-CN": "材料要求不清", "en": "Unclear papers"},
    7: {"zh-CN": "多次跑腿", "en": "Had to come back"},
    8: {"zh-CN": "环境不便", "en": "Poor facilities"},
    51: {"zh-CN": "办理快捷", "en": "Quick"},
    52: {"zh-CN": "态度热情", "en": "Friendly"},
    53: {"zh-CN": "解释清楚", "en": "Clear advice"},
    54: {"zh-CN": "一次办好", "en": "Done in one go"},
    55: {"zh-CN": "环境舒适", "en": "Pleasant hall"},
    56: {"zh-CN": "其他", "en": "Other"},
}

# What the voice prompts say (device.io.voice makes one WAV per prompt and language from these).
PROMPTS: Final[dict[str, dict[str, str]]] = {
    "invite": {"zh-CN": "请对本次服务进行评价", "en": "Please rate our service"},
    "reasons": {"zh-CN": "请告诉我们原因", "en": "Please tell us why"},
    "thanks": {"zh-CN": "感谢您的评价", "en": "Thank you"},
}


def text(key: str, language: str) -> str:
    """The string `key` in `language` (zh-CN for a language the catalogue does not have)."""
    entry = TEXT[key]
    return entry.get(language, entry["zh-CN"])


def face_labels(middle: str, language: str) -> dict[int, str]:
    """Level (1..5; 5 非常满意) -> the face's label; `middle` is the site's word for level 3."""
    middle_entry = MIDDLE_LABELS.get(middle, {"zh-CN": middle, "en": middle})
    labels = {level: text(f"level_{level}", language) for level in (1, 2, 4, 5)}
    labels[3] = middle_entry.get(language, middle_entry["zh-CN"])
    return labels


def reason_label(code: int, language: str, site_labels: Sequence[str] = ()) -> str:
    """The tag of reason `code`; in Chinese the site's own label for codes 1..len(site_labels)."""
    if language == "zh-CN" and 1 <= code <= len(site_labels) and site_labels[code - 1]:
        return site_labels[code - 1]
    entry = REASONS.get(code)
    if entry is None:
        return f"原因 {code}" if language == "zh-CN" else f"Reason {code}"
    return entry.get(language, entry["zh-CN"])
