"""The instruments the project knows: names, ids and playing ranges.

The names are those of URMP and Sub-URMP (13 instruments); the id of an instrument is its
index here and is what models receive. Ranges are MIDI note numbers of the instrument's
usual written range and are used by the virtual performer.
"""

from apvg_tf.errors import InputError

# name -> (lowest MIDI note, highest MIDI note, General MIDI program, 1-based).
_INSTRUMENTS = {
    "violin": (55, 100, 41),
    "viola": (48, 88, 42),
    "cello": (36, 81, 43),         # C2 to A5.
    "double_bass": (28, 67, 44),
    "flute": (60, 96, 74),
    "oboe": (58, 91, 69),
    "clarinet": (50, 91, 72),
    "bassoon": (34, 75, 71),
    "saxophone": (49, 81, 66),
    "trumpet": (54, 86, 57),
    "horn": (34, 77, 61),
    "trombone": (40, 77, 58),      # E2 to F5.
    "tuba": (26, 65, 59),
}
NAMES = tuple(_INSTRUMENTS)
# The hands whose place depends on the pitch played (the performer's own left and right):
# the hand that stops the strings, the trombone's slide hand, a wind player's fingers.
# Transposing the music moves these hands and their arms, and little else (pitch-shift
# augmentation masks them: apvg_tf/audio/augment.py).
_PITCH_HANDS = {"violin": ("left",), "viola": ("left",), "cello": ("left",),
                "double_bass": ("left",), "trombone": ("right",)}
# The arms whose strokes play the rhythm, where a viewer looks for them: the bow arm of the
# strings (the right: the left hand stops the strings) and the trombone's slide arm (also the
# right). The other winds move no single arm (both hands finger the keys).
_MOVING_ARMS = {"violin": ("right",), "viola": ("right",), "cello": ("right",),
                "double_bass": ("right",), "trombone": ("right",)}
# URMP file names abbreviate instruments (e.g. "AuSep_1_vc_...").
URMP_ABBREVIATIONS = {"vn": "violin", "va": "viola", "vc": "cello", "db": "double_bass",
                      "fl": "flute", "ob": "oboe", "cl": "clarinet", "bn": "bassoon",
                      "sax": "saxophone", "tpt": "trumpet", "hn": "horn", "tbn": "trombone",
                      "tba": "tuba"}


def check(name):
  """Returns the canonical instrument name, or raises InputError listing the known ones."""
  key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
  key = URMP_ABBREVIATIONS.get(key, key)
  if key not in _INSTRUMENTS:
    raise InputError(f"unknown instrument {name!r}; expected one of: {', '.join(NAMES)}")
  return key


def instrument_id(name):
  """Integer id of an instrument (its index in NAMES)."""
  return NAMES.index(check(name))


def midi_range(name):
  """(lowest, highest) MIDI note of an instrument."""
  low, high, _ = _INSTRUMENTS[check(name)]
  return low, high


def gm_program(name):
  """General MIDI program number of an instrument, 1-based as in the GM tables."""
  return _INSTRUMENTS[check(name)][2]


def pitch_hands(name):
  """The performer's hands ('left', 'right') that move with the pitch played on `name`."""
  return _PITCH_HANDS.get(check(name), ("left", "right"))


def moving_arms(name):
  """The performer's arms ('left', 'right') whose strokes play `name`: the bow or slide arm."""
  return _MOVING_ARMS.get(check(name), ("left", "right"))
