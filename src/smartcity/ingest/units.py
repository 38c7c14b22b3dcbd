"""Units of measurement: the UN/CEFACT common codes the Smart Data Models use, and conversions.

Devices and vendors write units every way ("°C", "celsius", "degC", "C", "CEL"); the models
want the UN/CEFACT Recommendation 20 common code in `unitCode`. `unit_for` reads any of the
spellings in the table, `convert` changes a value between two units of one dimension. A code
the table does not know but that has the shape of a common code is kept as it is (the list has
some 2,000 codes); anything else is refused by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: its common code, what it measures, and how it relates to that base unit."""

    code: str
    name: str
    dimension: str
    factor: float = 1.0
    """A value in this unit times `factor` (plus `offset`) is the value in the base unit."""
    offset: float = 0.0


# code, name, dimension, factor to the dimension's base unit, offset, other spellings
_ROWS: Final = (
    (
        "CEL",
        "degree Celsius",
        "temperature",
        1.0,
        0.0,
        (
            "°C",
            "℃",
            "C",
            "celsius",
            "degC",
            "deg C",
            "degree celsius",
            "degrees celsius",
            "degrees celsius (c)",
        ),
    ),
    (
        "FAH",
        "degree Fahrenheit",
        "temperature",
        5 / 9,
        -32 * 5 / 9,
        ("°F", "℉", "F", "fahrenheit", "degF", "degree fahrenheit", "degrees fahrenheit"),
    ),
    (
        "KEL",
        "kelvin",
        "temperature",
        1.0,
        -273.15,
        ("K", "kelvin", "kelvin degrees (k)", "kelvins"),
    ),
    ("P1", "percent", "ratio", 0.01, 0.0, ("%", "percent", "pct")),
    ("C62", "one", "ratio", 1.0, 0.0, ("1", "ratio", "fraction")),
    ("PAL", "pascal", "pressure", 1.0, 0.0, ("Pa", "pascal")),
    ("A97", "hectopascal", "pressure", 100.0, 0.0, ("hPa", "hectopascal")),
    ("KPA", "kilopascal", "pressure", 1000.0, 0.0, ("kPa", "kilopascal")),
    ("MBR", "millibar", "pressure", 100.0, 0.0, ("mbar", "mb", "millibar")),
    ("BAR", "bar", "pressure", 100_000.0, 0.0, ("bar",)),
    (
        "KMH",
        "kilometre per hour",
        "speed",
        1 / 3.6,
        0.0,
        (
            "km/h",
            "kmh",
            "kph",
            "km/hr",
            "kilometer per hour",
            "kilometre per hour",
            "kilometers per hour",
            "kilometer per hour (km/h)",
        ),
    ),
    (
        "MTS",
        "metre per second",
        "speed",
        1.0,
        0.0,
        ("m/s", "mps", "meter per second", "metre per second", "meters per second"),
    ),
    ("HM", "mile per hour", "speed", 0.44704, 0.0, ("mph", "mile per hour", "miles per hour")),
    ("KNT", "knot", "speed", 0.514444, 0.0, ("kn", "kt", "knot", "knots")),
    ("LUX", "lux", "illuminance", 1.0, 0.0, ("lx", "lux")),
    ("2N", "decibel", "level", 1.0, 0.0, ("dB", "dBA", "dB(A)", "dBa", "decibel", "decibels")),
    (
        "GQ",
        "microgram per cubic metre",
        "mass-concentration",
        1e-9,
        0.0,
        ("µg/m³", "μg/m³", "ug/m3", "µg/m3", "μg/m3", "ug/m³", "microgram per cubic metre"),
    ),
    (
        "GP",
        "milligram per cubic metre",
        "mass-concentration",
        1e-6,
        0.0,
        ("mg/m³", "mg/m3", "milligram per cubic metre"),
    ),
    ("KMQ", "kilogram per cubic metre", "mass-concentration", 1.0, 0.0, ("kg/m³", "kg/m3")),
    (
        "M1",
        "milligram per litre",
        "mass-concentration",
        1e-3,
        0.0,
        ("mg/L", "mg/l", "mg per liter", "milligram per litre"),
    ),
    ("59", "part per million", "mole-fraction", 1e-6, 0.0, ("ppm", "part per million")),
    ("61", "part per billion", "mole-fraction", 1e-9, 0.0, ("ppb", "part per billion")),
    (
        "KGM",
        "kilogram",
        "mass",
        1.0,
        0.0,
        ("kg", "kilogram", "kilograms", "kilograms (kg)", "kilogram (kg)"),
    ),
    ("GRM", "gram", "mass", 1e-3, 0.0, ("g", "gram", "grams")),
    ("MGM", "milligram", "mass", 1e-6, 0.0, ("mg", "milligram", "milligrams")),
    ("TNE", "tonne", "mass", 1000.0, 0.0, ("t", "tonne", "tonnes", "ton metric")),
    ("WTT", "watt", "power", 1.0, 0.0, ("W", "watt", "watts", "watts (w)")),
    ("KWT", "kilowatt", "power", 1000.0, 0.0, ("kW", "kilowatt", "kilowatts", "kilowatts (kw)")),
    ("MAW", "megawatt", "power", 1e6, 0.0, ("MW", "megawatt", "megawatts")),
    ("WHR", "watt hour", "energy", 3600.0, 0.0, ("Wh", "watt hour", "watt hours")),
    (
        "KWH",
        "kilowatt hour",
        "energy",
        3.6e6,
        0.0,
        ("kWh", "kilowatt hour", "kilowatt hours", "kilowatts per hour (kwh)"),
    ),
    ("MWH", "megawatt hour", "energy", 3.6e9, 0.0, ("MWh", "megawatt hour")),
    ("VLT", "volt", "voltage", 1.0, 0.0, ("V", "volt", "volts", "volts (v)")),
    ("2Z", "millivolt", "voltage", 1e-3, 0.0, ("mV", "millivolt", "millivolts (mv)")),
    ("AMP", "ampere", "current", 1.0, 0.0, ("A", "amp", "ampere", "amperes", "ampers (a)")),
    ("HTZ", "hertz", "frequency", 1.0, 0.0, ("Hz", "hertz", "hertz (hz)")),
    ("MTR", "metre", "length", 1.0, 0.0, ("m", "meter", "meters", "metre", "metres", "meter (m)")),
    (
        "KMT",
        "kilometre",
        "length",
        1000.0,
        0.0,
        ("km", "kilometer", "kilometers", "kilometre", "kilometres", "kilometer (km)"),
    ),
    ("CMT", "centimetre", "length", 0.01, 0.0, ("cm", "centimeter", "centimeters")),
    ("MMT", "millimetre", "length", 0.001, 0.0, ("mm", "millimeter", "millimeters")),
    ("MTK", "square metre", "area", 1.0, 0.0, ("m²", "m2", "square meters", "square metre")),
    ("LTR", "litre", "volume", 1e-3, 0.0, ("L", "l", "liter", "liters", "litre", "litres")),
    (
        "MTQ",
        "cubic metre",
        "volume",
        1.0,
        0.0,
        ("m³", "m3", "cubic meter", "cubic meters", "cubic metre"),
    ),
    ("SEC", "second", "time", 1.0, 0.0, ("s", "sec", "second", "seconds", "second (s)")),
    ("C26", "millisecond", "time", 1e-3, 0.0, ("ms", "millisecond", "milliseconds")),
    ("MIN", "minute", "time", 60.0, 0.0, ("min", "minute", "minutes")),
    ("HUR", "hour", "time", 3600.0, 0.0, ("h", "hr", "hour", "hours")),
    ("DD", "degree (angle)", "angle", 1.0, 0.0, ("°", "deg", "degree", "degrees")),
    ("LUM", "lumen", "luminous-flux", 1.0, 0.0, ("lm", "lumen", "lumens", "lumens (lm)")),
    ("D54", "watt per square metre", "irradiance", 1.0, 0.0, ("W/m²", "W/m2")),
)

UNITS: Final[dict[str, Unit]] = {
    code: Unit(code, name, dimension, factor, offset)
    for code, name, dimension, factor, offset, _ in _ROWS
}
"""The units this platform converts, by UN/CEFACT common code."""

# Exact spellings first (symbols are case-sensitive: "m" metre, "M" is not a unit here), then
# case-insensitive names.
_EXACT: Final[dict[str, str]] = {
    spelling: code for code, *_, spellings in _ROWS for spelling in (*spellings, code)
}
_FOLDED: Final[dict[str, str]] = {
    spelling.casefold(): code
    for code, *_, spellings in _ROWS
    for spelling in spellings
    if len(spelling) > 3
}

PREFERRED: Final[dict[str, str]] = {"FAH": "CEL", "HM": "KMH"}
"""Units always converted, whatever the model: the models use the SI and metric units."""

_COMMON_CODE: Final = re.compile(r"^[A-Z0-9]{2,3}$")


def unit_for(text: str) -> Unit | None:
    """Return the unit a spelling or common code names, or None if the table has none."""
    stripped = text.strip()
    code = _EXACT.get(stripped) or _FOLDED.get(stripped.casefold())
    return UNITS[code] if code is not None else None


def looks_like_common_code(text: str) -> bool:
    """Tell whether a text has the shape of a UN/CEFACT common code (2-3 capitals or digits)."""
    return bool(_COMMON_CODE.match(text))


def convert(value: float, source: Unit, target: Unit) -> float:
    """Return `value` (in `source`) in `target`; both must measure the same dimension."""
    if source.code == target.code:
        return value
    if source.dimension != target.dimension:
        raise ValueError(f"cannot convert {source.name} to {target.name}")
    base = value * source.factor + source.offset
    return (base - target.offset) / target.factor


_UNITS_IN_TEXT: Final = re.compile(r"Units?\s*:\s*'([^']+)'", re.IGNORECASE)


def unit_in_description(description: str) -> Unit | None:
    """Return the unit a model's description declares ("Units:'meters'"), if the table has it.

    The Smart Data Models write the unit they want in the attribute's description; a
    spelling the table does not know declares nothing (the value is then not converted).
    """
    match = _UNITS_IN_TEXT.search(description)
    if match is None:
        return None
    declared = match.group(1).strip()
    unit = unit_for(declared)
    if unit is None and "(" in declared:
        # "Kilometer per hour (Km/h)": try the symbol between the brackets.
        unit = unit_for(declared[declared.rfind("(") + 1 :].rstrip(")"))
    return unit
