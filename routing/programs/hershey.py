"""Hershey Roman Simplex: a single-stroke vector font for engraving, as plain Python data.

Source and licence: the glyphs of Dr. A. V. Hershey's "Roman Simplex" set (ASCII 32-126),
the set distributed as ``futural.jhf`` in the James Hurt format and known elsewhere as the
"simplex" table. The Hershey fonts are in the public domain; the distribution they come
from asks for these acknowledgements, which we keep:

- The Hershey Fonts were originally created by Dr. A. V. Hershey while working at the
  U. S. National Bureau of Standards.
- The format of the Font data in this distribution was originally created by James Hurt,
  Cognition, Inc., 900 Technology Park Drive, Billerica, MA 01821.

Encoding (James Hurt's): each glyph is one string. Its first two characters are the left
and right bearings, then each pair of characters is one vertex, every coordinate stored as
its character code minus ``ord("R")``; the pair ``" R"`` lifts the pen. Hurt's y axis points
down with the baseline at 9 and the cap line at -12; :data:`GLYPHS` is decoded once at
import into our convention: font units, x from the glyph's left edge, y up from the
baseline, capitals :data:`CAP_HEIGHT` units tall, descenders down to about -7.
"""

from __future__ import annotations

from dataclasses import dataclass

CAP_HEIGHT = 21
"""Height of a capital letter (and of digits) above the baseline, in font units."""

_BASELINE = 9  # Hurt's y of the baseline; his y grows downwards.

_DATA: tuple[str, ...] = (
    "JZ",  # ' '
    "MWRFRT RRYQZR[SZRY",  # '!'
    "JZNFNM RVFVM",  # '"'
    "H]SBLb RYBRb RLOZO RKUYU",  # '#'
    "H\\PBP_ RTBT_ RYIWGTFPFMGKIKKLMMNOOUQWRXSYUYXWZT[P[MZKX",  # '$'
    "F^[FI[ RNFPHPJOLMMKMIKIIJGLFNFPGSHVHYG[F RWTUUTWTYV[X[ZZ[X[VYTWT",  # '%'
    "E_\\O\\N[MZMYNXPVUTXRZP[L[JZIYHWHUISJRQNRMSKSIRGPFNGMIMKNNPQUXWZY[[[\\Z\\Y",  # '&'
    "MWRHQGRFSGSIRKQL",  # "'"
    "KYVBTDRGPKOPOTPYR]T`Vb",  # '('
    "KYNBPDRGTKUPUTTYR]P`Nb",  # ')'
    "JZRLRX RMOWU RWOMU",  # '*'
    "E_RIR[ RIR[R",  # '+'
    "NVSWRXQWRVSWSYQ[",  # ','
    "E_IR[R",  # '-'
    "NVRVQWRXSWRV",  # '.'
    "G][BIb",  # '/'
    "H\\QFNGLJKOKRLWNZQ[S[VZXWYRYOXJVGSFQF",  # '0'
    "H\\NJPISFS[",  # '1'
    "H\\LKLJMHNGPFTFVGWHXJXLWNUQK[Y[",  # '2'
    "H\\MFXFRNUNWOXPYSYUXXVZS[P[MZLYKW",  # '3'
    "H\\UFKTZT RUFU[",  # '4'
    "H\\WFMFLOMNPMSMVNXPYSYUXXVZS[P[MZLYKW",  # '5'
    "H\\XIWGTFRFOGMJLOLTMXOZR[S[VZXXYUYTXQVOSNRNOOMQLT",  # '6'
    "H\\YFO[ RKFYF",  # '7'
    "H\\PFMGLILKMMONSOVPXRYTYWXYWZT[P[MZLYKWKTLRNPQOUNWMXKXIWGTFPF",  # '8'
    "H\\XMWPURRSQSNRLPKMKLLINGQFRFUGWIXMXRWWUZR[P[MZLX",  # '9'
    "NVROQPRQSPRO RRVQWRXSWRV",  # ':'
    "NVROQPRQSPRO RSWRXQWRVSWSYQ[",  # ';'
    "F^ZIJRZ[",  # '<'
    "E_IO[O RIU[U",  # '='
    "F^JIZRJ[",  # '>'
    "I[LKLJMHNGPFTFVGWHXJXLWNVORQRT RRYQZR[SZRY",  # '?'
    (
        "E`WNVLTKQKOLNMMPMSNUPVSVUUVS RQKOMNPNSOUPV RWKVSVUXVZV\\T]Q]O\\L[JYHWGTFQF"
        "NGLHJJILHOHRIUJWLYNZQ[T[WZYYZX RXKWSWUXV"
    ),  # '@'
    "I[RFJ[ RRFZ[ RMTWT",  # 'A'
    "G\\KFK[ RKFTFWGXHYJYLXNWOTP RKPTPWQXRYTYWXYWZT[K[",  # 'B'
    "H]ZKYIWGUFQFOGMILKKNKSLVMXOZQ[U[WZYXZV",  # 'C'
    "G\\KFK[ RKFRFUGWIXKYNYSXVWXUZR[K[",  # 'D'
    "H[LFL[ RLFYF RLPTP RL[Y[",  # 'E'
    "HZLFL[ RLFYF RLPTP",  # 'F'
    "H]ZKYIWGUFQFOGMILKKNKSLVMXOZQ[U[WZYXZVZS RUSZS",  # 'G'
    "G]KFK[ RYFY[ RKPYP",  # 'H'
    "NVRFR[",  # 'I'
    "JZVFVVUYTZR[P[NZMYLVLT",  # 'J'
    "G\\KFK[ RYFKT RPOY[",  # 'K'
    "HYLFL[ RL[X[",  # 'L'
    "F^JFJ[ RJFR[ RZFR[ RZFZ[",  # 'M'
    "G]KFK[ RKFY[ RYFY[",  # 'N'
    "G]PFNGLIKKJNJSKVLXNZP[T[VZXXYVZSZNYKXIVGTFPF",  # 'O'
    "G\\KFK[ RKFTFWGXHYJYMXOWPTQKQ",  # 'P'
    "G]PFNGLIKKJNJSKVLXNZP[T[VZXXYVZSZNYKXIVGTFPF RSWY]",  # 'Q'
    "G\\KFK[ RKFTFWGXHYJYLXNWOTPKP RRPY[",  # 'R'
    "H\\YIWGTFPFMGKIKKLMMNOOUQWRXSYUYXWZT[P[MZKX",  # 'S'
    "JZRFR[ RKFYF",  # 'T'
    "G]KFKULXNZQ[S[VZXXYUYF",  # 'U'
    "I[JFR[ RZFR[",  # 'V'
    "F^HFM[ RRFM[ RRFW[ R\\FW[",  # 'W'
    "H\\KFY[ RYFK[",  # 'X'
    "I[JFRPR[ RZFRP",  # 'Y'
    "H\\YFK[ RKFYF RK[Y[",  # 'Z'
    "KYOBOb RPBPb ROBVB RObVb",  # '['
    "KYKFY^",  # '\\'
    "KYTBTb RUBUb RNBUB RNbUb",  # ']'
    "JZRDJR RRDZR",  # '^'
    "I[Ib[b",  # '_'
    "NVSKQMQORPSORNQO",  # '`'
    "I\\XMX[ RXPVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'a'
    "H[LFL[ RLPNNPMSMUNWPXSXUWXUZS[P[NZLX",  # 'b'
    "I[XPVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'c'
    "I\\XFX[ RXPVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'd'
    "I[LSXSXQWOVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'e'
    "MYWFUFSGRJR[ ROMVM",  # 'f'
    "I\\XMX]W`VaTbQbOa RXPVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'g'
    "I\\MFM[ RMQPNRMUMWNXQX[",  # 'h'
    "NVQFRGSFREQF RRMR[",  # 'i'
    "MWRFSGTFSERF RSMS^RaPbNb",  # 'j'
    "IZMFM[ RWMMW RQSX[",  # 'k'
    "NVRFR[",  # 'l'
    "CaGMG[ RGQJNLMOMQNRQR[ RRQUNWMZM\\N]Q][",  # 'm'
    "I\\MMM[ RMQPNRMUMWNXQX[",  # 'n'
    "I\\QMONMPLSLUMXOZQ[T[VZXXYUYSXPVNTMQM",  # 'o'
    "H[LMLb RLPNNPMSMUNWPXSXUWXUZS[P[NZLX",  # 'p'
    "I\\XMXb RXPVNTMQMONMPLSLUMXOZQ[T[VZXX",  # 'q'
    "KXOMO[ ROSPPRNTMWM",  # 'r'
    "J[XPWNTMQMNNMPNRPSUTWUXWXXWZT[Q[NZMX",  # 's'
    "MYRFRWSZU[W[ ROMVM",  # 't'
    "I\\MMMWNZP[S[UZXW RXMX[",  # 'u'
    "JZLMR[ RXMR[",  # 'v'
    "G]JMN[ RRMN[ RRMV[ RZMV[",  # 'w'
    "J[MMX[ RXMM[",  # 'x'
    "JZLMR[ RXMR[P_NaLbKb",  # 'y'
    "J[XMM[ RMMXM RM[X[",  # 'z'
    "KYTBRCQDPFPHQJRKSMSOQQ RRCQEQGRISJTLTNSPORSTTVTXSZR[Q]Q_Ra RQSSUSWRYQZP\\P^Q`RaTb",  # '{'
    "NVRBRb",  # '|'
    "KYPBRCSDTFTHSJRKQMQOSQ RRCSESGRIQJPLPNQPURQTPVPXQZR[S]S_Ra RSSQUQWRYSZT\\T^S`RaPb",  # '}'
    "F^IUISJPLONOPPTSVTXTZS[Q RISJQLPNPPQTTVUXUZT[Q[O",  # '~'
)
"""Glyphs for ``chr(32)`` .. ``chr(126)``, in order."""

Point = tuple[int, int]
Stroke = tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Glyph:
    """One character: where the pen goes, and how far the next character starts.

    Attributes:
        advance: Width of the glyph cell in font units (the next glyph starts here).
        strokes: Polylines in font units (x from the cell's left, y up from the baseline).
    """

    advance: int
    strokes: tuple[Stroke, ...]


def _decode(data: str) -> Glyph:
    left, right = ord(data[0]) - ord("R"), ord(data[1]) - ord("R")
    strokes: list[Stroke] = []
    current: list[Point] = []
    for i in range(2, len(data), 2):
        pair = data[i : i + 2]
        if pair == " R":
            if current:
                strokes.append(tuple(current))
            current = []
            continue
        x, y = ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")
        current.append((x - left, _BASELINE - y))
    if current:
        strokes.append(tuple(current))
    return Glyph(advance=right - left, strokes=tuple(strokes))


GLYPHS: dict[str, Glyph] = {chr(32 + i): _decode(d) for i, d in enumerate(_DATA)}
"""Every glyph of the font by character."""

SUPPORTED_CHARS: frozenset[str] = frozenset(GLYPHS)
"""The characters the font can draw: printable ASCII, space to tilde (no newline, no tab)."""
