"""Pairs in the MPI job: for a shard of pairs, learn the insert size, rescue mates in a
window beside a placed mate, and choose both mates' alignments jointly
(:mod:`hpc.kernels.pairing`). Pure array code around the kernels; no I/O."""

from __future__ import annotations

import dataclasses

import numpy as np

from hpc.kernels.batch import SECONDARY_RATIO, locus_spans, score_floor, select_hits
from hpc.kernels.dispatch import full_band
from hpc.kernels.pairing import confident_inserts, insert_model, pair_reads, rescue_windows
from hpc.mapq import MAPQ_MAX
from hpc.windows import Windows

UNPAIRED_PENALTY = 17  # bwa-mem's pen_unpaired, in matches' worth of score
RESCUE_MIN = 0.3  # a rescued mate must score this share of a perfect match of the read
NEAR_BEST = 4  # mismatches' worth of score: hits this close to a read's best get their mate rescued


def _spans(wstart, r_ends, qlen):
    tend = wstart.astype(np.int64) + r_ends.astype(np.int64) + 1
    return np.maximum(tend - qlen, wstart.astype(np.int64)), tend


def tandem_moves(read, n_reads: int, tied_cand, pick, primary, proper, tstart, tend):
    """The primaries of proper pairs whose own window holds placements as good (``tied_cand``,
    by candidate), and their mates' spans."""
    first = pick[primary == 1]
    primary_of = np.full(n_reads, -1, dtype=np.int64)
    primary_of[read[first]] = first
    moves = first[tied_cand[first] & (proper[read[first]] == 1)]
    mates = primary_of[read[moves] ^ 1]
    moves, mates = moves[mates >= 0], mates[mates >= 0]
    return moves.astype(np.int64), tstart[mates].astype(np.int64), tend[mates].astype(np.int64)


def pair_shard(windows: Windows, n_reads: int, contig, wstart, wend, band, scores, q_ends, r_ends, pick, primary, mapq,
               tied, scoring, score_pairs, max_secondary, min_score):
    """The shard's candidates (``windows``) with rescued mates added (each aligned in its whole
    window: where the mate lies in it is not known), and the picks after pairing: ``(windows,
    read, strand, contig, wstart, wend, band, scores, q_ends, r_ends, pick, primary, second,
    mapq, proper, rescued)``; ``mapq``, ``tied`` (an equal placement in the pick's own window:
    :func:`hpc.kernels.pairing.pair_reads`) and ``proper`` per pick; ``band``: each candidate's
    (lowest, highest) diagonal, as it was scored; ``min_score``: the least score reported
    (:func:`hpc.kernels.batch.score_floor`)."""
    match, mismatch = scoring[0], scoring[1]
    genome, lengths, read, strand = windows.genome, windows.lengths, windows.read, windows.strand
    tied_cand = np.zeros(read.shape[0], dtype=bool)  # by candidate: rescued mates are appended after these
    tied_cand[pick[tied == 1]] = True
    se = np.zeros(n_reads, dtype=np.int64)
    se[read[pick[primary == 1]]] = mapq[primary == 1]
    se_tied = np.zeros(n_reads, dtype=np.uint8)
    se_tied[read[pick[primary == 1]]] = tied[primary == 1]
    tstart, tend = _spans(wstart, r_ends, lengths[read])
    # Hits under their read's score floor are not reported (select_hits): neither paired, nor a mate's anchor.
    scores_ok = np.where(scores >= score_floor(lengths[read], match, min_score), scores, 0).astype(scores.dtype)
    inserts = confident_inserts(read, scores_ok, contig, strand, tstart, tend, n_reads, 3 * (match - mismatch))
    mean, std, lo, hi = insert_model(inserts)
    rescue_min = int(RESCUE_MIN * match * np.median(lengths)) if lengths.size else 1
    rr, rs, rc, rws, rwe = rescue_windows(read, scores_ok, contig, strand, tstart, tend, n_reads, lo, hi,
                                          genome.lengths.astype(np.int64), rescue_min, NEAR_BEST * (match - mismatch))
    rescued = 0
    if rr.shape[0]:
        extra = dataclasses.replace(windows, read=rr.astype(read.dtype), strand=rs.astype(strand.dtype),
                                    start=genome.starts[rc] + rws, end=genome.starts[rc] + rwe)
        full = full_band(extra.q_len, extra.r_len)
        r_scores, r_q, r_r = extra.score(score_pairs, scoring, full)
        keep = r_scores >= rescue_min
        rescued = int(keep.sum())
        windows = dataclasses.replace(windows, read=np.concatenate((read, extra.read[keep])),
                                      strand=np.concatenate((strand, extra.strand[keep])),
                                      start=np.concatenate((windows.start, extra.start[keep])),
                                      end=np.concatenate((windows.end, extra.end[keep])))
        read, strand = windows.read, windows.strand
        contig = np.concatenate((contig, rc[keep].astype(contig.dtype)))
        wstart = np.concatenate((wstart, rws[keep].astype(wstart.dtype)))
        wend = np.concatenate((wend, rwe[keep].astype(wend.dtype)))
        band = (np.concatenate((band[0], full[0][keep])), np.concatenate((band[1], full[1][keep])))
        scores = np.concatenate((scores, r_scores[keep]))
        scores_ok = np.concatenate((scores_ok, r_scores[keep].astype(scores_ok.dtype)))
        q_ends = np.concatenate((q_ends, r_q[keep]))
        r_ends = np.concatenate((r_ends, r_r[keep]))
        tstart, tend = _spans(wstart, r_ends, lengths[read])
    per_unit = 20.0 / (match - mismatch)
    priority, pair_mapq, proper = pair_reads(read, scores_ok, contig, strand, tstart, tend, n_reads, lo, hi, mean, std,
                                             float(match), float(UNPAIRED_PENALTY * match), per_unit, MAPQ_MAX, se,
                                             se_tied)
    pick, primary, second = select_hits(read, scores, contig, strand, *locus_spans(wstart, r_ends), SECONDARY_RATIO,
                                        max_secondary, priority, score_floor(lengths[read], match, min_score))
    tied_cand = np.pad(tied_cand, (0, read.shape[0] - tied_cand.shape[0]))  # none of the rescued mates
    moves, mate_start, mate_end = tandem_moves(read, n_reads, tied_cand, pick, primary, proper, tstart, tend)
    if moves.shape[0]:  # a mate inside a tandem array: of its equal shifts, the one its insert makes likeliest
        windows.place(band, scores, q_ends, r_ends, wstart, moves, mate_start, mate_end, match, mismatch, float(mean))
    return (windows, read, strand, contig, wstart, wend, band, scores, q_ends, r_ends, pick, primary, second,
            pair_mapq[read[pick]] * primary, proper[read[pick]] * primary, rescued)
