"""Java number formatting: ``DecimalFormat`` patterns (``numberFormat``) and ``String.format`` (``format``)."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ._errors import ExpressionError
from ._values import is_number, java_str, number_text


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _split_pattern(pattern: str) -> tuple[str, str, str]:
    """Prefix, numeric part and suffix of one DecimalFormat sub-pattern (quotes allowed in affixes)."""
    numeric_chars = set("#0,.E")
    prefix: list[str] = []
    numeric: list[str] = []
    suffix: list[str] = []
    target = prefix
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            end = pattern.find("'", index + 1)
            if end < 0:
                raise ExpressionError(f"Malformed pattern \"{pattern}\"")
            literal = pattern[index + 1:end] or "'"
            (suffix if numeric else prefix).append(literal)
            index = end + 1
            continue
        if char in numeric_chars and target is not suffix:
            target = numeric
            numeric.append(char)
        else:
            if numeric:
                target = suffix
            target.append(char)
        index += 1
    return "".join(prefix), "".join(numeric), "".join(suffix)


def decimal_format(value: Any, pattern: str) -> str:
    """``new DecimalFormat(pattern).format(value)`` with HALF_EVEN rounding and en_US symbols."""
    if not is_number(value):
        raise ExpressionError(f"numberFormat can only format numbers, not {java_str(value)}")
    positive = pattern.split(";")[0]
    prefix, numeric, suffix = _split_pattern(positive)
    if not numeric:
        raise ExpressionError(f"Malformed pattern \"{pattern}\"")
    number = _to_decimal(value)
    if not number.is_finite():
        return "\u221e" if number > 0 else "-\u221e" if number.is_infinite() else "NaN"
    affixes = prefix + suffix
    if "%" in affixes:
        number *= 100
    elif "\u2030" in affixes:
        number *= 1000
    if "E" in numeric:
        return _scientific(number, numeric, prefix, suffix)
    integer_part, _, fraction_part = numeric.partition(".")
    grouping = 0
    if "," in integer_part:
        grouping = len(integer_part) - integer_part.rindex(",") - 1
    min_int = integer_part.count("0")
    min_frac = fraction_part.count("0")
    max_frac = min_frac + fraction_part.count("#")
    negative = number < 0
    quantum = Decimal(1).scaleb(-max_frac)
    rounded = abs(number).quantize(quantum, rounding=ROUND_HALF_EVEN)
    text = format(rounded, "f")
    int_text, _, frac_text = text.partition(".")
    frac_text = frac_text.rstrip("0")
    if len(frac_text) < min_frac:
        frac_text = frac_text.ljust(min_frac, "0")
    int_text = int_text.lstrip("0")
    if len(int_text) < min_int:
        int_text = int_text.rjust(min_int, "0")
    if grouping and int_text:
        groups = []
        while len(int_text) > grouping:
            groups.insert(0, int_text[-grouping:])
            int_text = int_text[:-grouping]
        groups.insert(0, int_text)
        int_text = ",".join(groups)
    if not int_text and not frac_text:
        int_text = "0"
    body = int_text + ("." + frac_text if frac_text else ("." if numeric.endswith(".") else ""))
    if negative and any(c != "0" for c in body if c.isdigit()):
        return "-" + prefix + body + suffix
    return prefix + body + suffix


def _scientific(number: Decimal, numeric: str, prefix: str, suffix: str) -> str:
    mantissa_pattern, _, exponent_pattern = numeric.partition("E")
    int_part, _, frac_part = mantissa_pattern.partition(".")
    int_digits = max(int_part.count("0"), 1)
    max_frac = frac_part.count("0") + frac_part.count("#")
    min_frac = frac_part.count("0")
    if number == 0:
        exponent = 0
        mantissa = Decimal(0)
    else:
        exponent = number.copy_abs().adjusted() - (int_digits - 1)
        mantissa = number.scaleb(-exponent)
    mantissa = mantissa.quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    text = format(abs(mantissa), "f")
    int_text, _, frac_text = text.partition(".")
    frac_text = frac_text.rstrip("0").ljust(min_frac, "0")
    exp_text = str(abs(exponent)).rjust(exponent_pattern.count("0"), "0")
    body = int_text + ("." + frac_text if frac_text else "") + "E" + ("-" if exponent < 0 else "") + exp_text
    return ("-" if number < 0 else "") + prefix + body + suffix


def default_number_format(value: Any) -> str:
    """``NumberFormat.getInstance(Locale.US)``: grouping and at most three fraction digits."""
    return decimal_format(value, "#,##0.###")


# --- String.format ------------------------------------------------------------------------------

_SPEC = re.compile(r"%(\d+\$)?([-#+ 0,(<]*)?(\d+)?(\.\d+)?([tT]?[a-zA-Z%])")


def java_format(template: str, args: list[Any]) -> str:
    """``String.format`` for the common conversions (s, d, f, e, g, x, o, c, b, n, %)."""
    position = 0
    out: list[str] = []
    last = 0
    for match in _SPEC.finditer(template):
        out.append(template[last:match.start()])
        last = match.end()
        index_text, flags, width, precision, conversion = match.groups()
        flags = flags or ""
        if conversion == "%":
            out.append("%")
            continue
        if conversion == "n":
            out.append("\n")
            continue
        if index_text:
            arg_index = int(index_text[:-1]) - 1
        else:
            arg_index = position
            position += 1
        if arg_index >= len(args):
            raise ExpressionError(f"Format specifier '{match.group()}' has no matching argument")
        value = args[arg_index]
        out.append(_convert(value, flags, width, precision, conversion, match.group()))
    out.append(template[last:])
    return "".join(out)


#: Widths and precisions of a format specifier above this are refused before any text is built.
MAX_FORMAT_WIDTH = 1_000_000


def _convert(value: Any, flags: str, width: str | None, precision: str | None, conversion: str,
             spec: str) -> str:
    for part in (width, precision[1:] if precision else None):
        if part and (len(part) > 7 or int(part) > MAX_FORMAT_WIDTH):
            raise ExpressionError(f"Format specifier '{spec}' asks for more than {MAX_FORMAT_WIDTH} characters")
    lower = conversion.lower()
    if lower == "s":
        text = "null" if value is None else java_str(value)
        if precision:
            text = text[:int(precision[1:])]
    elif lower == "b":
        text = "false" if value is None or value is False else "true"
    elif lower == "c":
        text = value if isinstance(value, str) else chr(int(value))
    elif lower in "dxo":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExpressionError(f"{spec} != {type(value).__name__}")
        python_flags = flags.replace(",", "").replace("(", "")
        text = format(value, f"{python_flags}{',' if ',' in flags else ''}{lower if lower != 'd' else 'd'}")
        if "(" in flags and value < 0:
            text = f"({text.lstrip('-')})"
    elif lower in "feg":
        if not is_number(value):
            raise ExpressionError(f"{spec} != {type(value).__name__}")
        digits = precision or ".6"
        python_flags = flags.replace("(", "")
        text = format(value if isinstance(value, Decimal) else float(value), f"{python_flags}{digits}{lower}")
        if lower == "e":
            mantissa, _, exponent = text.partition("e")
            sign = exponent[0]
            text = f"{mantissa}e{sign}{exponent[1:].rjust(2, '0')}"
    else:
        raise ExpressionError(f"Unknown format conversion '{conversion}'")
    if conversion.isupper():
        text = text.upper()
    if width:
        size = int(width)
        if "-" in flags:
            text = text.ljust(size)
        elif "0" in flags and lower in "dxofeg":
            sign = text[0] if text[:1] in "+-" else ""
            text = sign + text[len(sign):].rjust(size - len(sign), "0")
        else:
            text = text.rjust(size)
    return text


# --- number(type) -------------------------------------------------------------------------------

_JAVA_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]+|\d+)")


def _decode_int(text: str) -> int:
    match = _JAVA_INT.fullmatch(text)
    if not match:
        raise ExpressionError(f"For input string: \"{text}\"")
    sign, digits = match.groups()
    if digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif digits.startswith("#"):
        value = int(digits[1:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if sign == "-" else value


def parse_number(text: Any, kind: str | None) -> Any:
    """The ``number`` filter (Apache Commons ``NumberUtils.createXxx``)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ExpressionError(f"'number' filter can only be applied to String. Actual type was: "
                              f"{type(text).__name__}")
    value = text.strip()
    kind = (kind or "").upper()
    try:
        if kind in ("INT", "LONG", "BIGINTEGER"):
            result = _decode_int(value.rstrip("lL") if kind == "LONG" else value)
            if kind == "INT" and not -(2 ** 31) <= result < 2 ** 31:
                raise ExpressionError(f"Value out of range. Value:\"{value}\"")
            if kind == "LONG" and not -(2 ** 63) <= result < 2 ** 63:
                raise ExpressionError(f"Value out of range. Value:\"{value}\"")
            return result
        if kind in ("FLOAT", "DOUBLE"):
            return float(value.rstrip("fFdD"))
        if kind == "BIGDECIMAL":
            return Decimal(value)
        if kind:
            raise ExpressionError(f"Unknown number type '{kind}'")
        if value[-1:] in ("l", "L") and _JAVA_INT.fullmatch(value[:-1]):
            return _decode_int(value[:-1])
        if _JAVA_INT.fullmatch(value):
            return _decode_int(value)
        return float(value.rstrip("fFdD"))
    except (ValueError, InvalidOperation):
        raise ExpressionError(f"{text} is not a valid number.") from None


def number_string(value: Any) -> str | None:
    """The ``string`` filter: a number (or numeric text) as text."""
    if value is None:
        return None
    if is_number(value):
        return number_text(value)
    if isinstance(value, str):
        try:
            return str(Decimal(value.strip()))
        except InvalidOperation:
            raise ExpressionError(f"'string' filter expects a valid number. Received an invalid numeric string: "
                                  f"{value}") from None
    raise ExpressionError("'string' filter expects a Number (INT, FLOAT, DOUBLE, etc.) or numeric String. "
                          f"Received: {type(value).__name__}")
