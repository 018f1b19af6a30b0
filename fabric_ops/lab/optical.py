"""Pure optical models: received power -> pre-FEC BER -> FEC counts, and span OSNR -> Q -> BER for DWDM.

Simplified but monotonic and in the right decades, so that detectors tuned on these
numbers behave sensibly on real ones:

* grey PAM4 optics (DR4/FR4) use KP4 RS(544,514) FEC: correctable up to a pre-FEC
  BER of 2.4e-4, loss of signal a little below receiver sensitivity;
* coherent 400ZR/ZR+ wavelengths use the Gaussian-noise relation BER = erfc(Q/sqrt 2)/2
  with Q (dB) tracking OSNR minus a modulation penalty, and lose frame above ~2e-2.
"""

from __future__ import annotations

import math

KP4_CODEWORD_BITS = 5440
KP4_BER_LIMIT = 2.4e-4
RX_SENSITIVITY_DBM = -8.0  # per-lane OMA sensitivity of a 100G-per-lane PAM4 receiver, rounded
LOS_MARGIN_DB = -1.0  # below sensitivity by this much the receiver declares loss of signal
HEALTHY_BER = 1e-9
COHERENT_PENALTY_DB = 17.0  # OSNR (0.1 nm) minus Q for DP-16QAM at 60 GBd, rounded
COHERENT_BER_LOF = 2e-2  # oFEC threshold: above it the wavelength loses frame
MAX_BER = 0.5


def ber_from_margin(margin_db: float) -> float:
    """Pre-FEC BER of a PAM4 lane with ``margin_db`` of received power above sensitivity."""
    return min(MAX_BER, max(HEALTHY_BER, 10 ** (-3.0 - margin_db)))


def codewords_per_second(speed_gbps: float) -> float:
    return speed_gbps * 1e9 / KP4_CODEWORD_BITS


def fec_counts(speed_gbps: float, ber: float, seconds: float) -> tuple[float, float]:
    """(corrected, uncorrectable) codewords over ``seconds`` at ``ber``.

    Corrected: every codeword with at least one bit error (about BER x codeword bits).
    Uncorrectable: negligible below the KP4 limit, then climbing steeply with BER.
    """
    cw = codewords_per_second(speed_gbps) * seconds
    errored = min(1.0, ber * KP4_CODEWORD_BITS)
    uncorrectable = min(1.0, 1e-10 * (ber / KP4_BER_LIMIT) ** 12)
    return cw * errored * (1 - uncorrectable), cw * uncorrectable


LAUNCH_POWER_DBM = 0.0
AMPLIFIER_NF_DB = 5.0


def span_osnr_db(loss_db: float, amplifiers: int) -> float:
    """OSNR (0.1 nm) of a healthy wavelength after a fibre route of ``amplifiers + 1`` amplified sections.

    The textbook link budget: 58 dB + launch power - section loss - amplifier noise figure - 10 log10(sections).
    """
    sections = amplifiers + 1
    return 58.0 + LAUNCH_POWER_DBM - loss_db / sections - AMPLIFIER_NF_DB - 10 * math.log10(sections)


def combine_osnr_db(values: list[float]) -> float:
    """Noise adds in linear units across spans: 1/OSNR_total = sum 1/OSNR_i."""
    if not values:
        return 36.0
    return -10 * math.log10(sum(10 ** (-v / 10) for v in values))


def q_from_osnr_db(osnr_db: float) -> float:
    return osnr_db - COHERENT_PENALTY_DB


def ber_from_q_db(q_db: float) -> float:
    q_lin = 10 ** (q_db / 20)
    return min(MAX_BER, max(1e-15, 0.5 * math.erfc(q_lin / math.sqrt(2))))
