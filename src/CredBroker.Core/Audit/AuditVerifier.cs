namespace CredBroker.Core.Audit;

/// <summary>
/// Walks the retained chain from its anchor to its head and reports the first broken sequence:
/// a record whose body no longer matches its hash (edited), a record rewritten with a recomputed
/// hash (its successor no longer commits to it), a gap (deleted), a head or signed checkpoint past
/// the last record (truncated), a checkpoint that is not validly signed or disagrees with the chain,
/// a required checkpoint that is missing (one is due at least every checkpoint interval), an anchor
/// that is not a validly signed checkpoint (re-anchored), or a chain that ends before, or differs at,
/// the newest record this process appended or saw (rolled back).
/// </summary>
public static class AuditVerifier
{
    public const int PageSize = 1000;

    /// <param name="signers">Every key that may have signed a checkpoint (current and retired).</param>
    /// <param name="progress">Told the number of records checked so far, once per page.</param>
    public static async Task<AuditVerification> VerifyAsync(
        IAuditLog log, IReadOnlyCollection<IAuditSigner> signers, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        // The state first: appends during the walk only extend the chain past the head we check against.
        var state = await log.GetStateAsync(cancellationToken);
        var checkpoints = await log.ReadCheckpointsAsync(cancellationToken);
        var failure = new Failure();
        CheckAnchor(state, signers, failure);
        var bySequence = new Dictionary<long, AuditCheckpoint>();
        var verified = 0;
        foreach (var checkpoint in checkpoints.Where(c => c.Sequence > state.AnchorSequence))
        {
            var signer = signers.FirstOrDefault(s => s.KeyId == checkpoint.KeyId);
            if (signer is null || !checkpoint.IsSignedBy(signer))
            {
                failure.At(checkpoint.Sequence, $"the checkpoint at {checkpoint.Sequence} is not validly signed by a known key ({checkpoint.KeyId})");
                continue;
            }

            bySequence[checkpoint.Sequence] = checkpoint;
        }

        var anchor = state.Anchor;
        var expected = state.AnchorSequence + 1;
        var previousHash = state.AnchorHash;
        long checkedCount = 0;
        string? position = null;
        var firstPage = true;
        string? witnessedHash = null;
        while (expected <= state.HeadSequence && failure.Sequence is null)
        {
            var page = await log.ReadAsync(position, PageSize, cancellationToken);
            if (firstPage && page.Count > 0 && page[0].Sequence != expected)
            {
                // Retention may have moved the anchor since the state was read: start from the new one (signed too).
                var now = await log.GetStateAsync(cancellationToken);
                if (now.AnchorSequence == page[0].Sequence - 1 && now.AnchorSequence > state.AnchorSequence)
                {
                    CheckAnchor(now, signers, failure);
                    (expected, previousHash, anchor) = (now.AnchorSequence + 1, now.AnchorHash, now.Anchor);
                }
            }

            firstPage = false;
            foreach (var record in page)
            {
                if (record.Sequence > state.HeadSequence && record.Sequence >= expected)
                {
                    break;
                }

                if (Check(record, expected, previousHash, bySequence, failure))
                {
                    break;
                }

                previousHash = record.Hash;
                expected++;
                checkedCount++;
                if (bySequence.ContainsKey(record.Sequence))
                {
                    verified++;
                }

                if (record.Sequence == state.WitnessSequence)
                {
                    witnessedHash = record.Hash;
                }
            }

            progress?.Report(checkedCount);
            if (page.Count < PageSize)
            {
                break;
            }

            position = page[^1].Position;
        }

        var last = expected - 1;
        if (failure.Sequence is null)
        {
            if (state.HeadSequence > last)
            {
                failure.At(last + 1, $"records {last + 1}..{state.HeadSequence} are missing: the chain ends at {last} but its head is at {state.HeadSequence} (truncated)");
            }
            else if (last > state.AnchorSequence && previousHash != state.HeadHash)
            {
                failure.At(last, $"record {last} does not match the head hash (rewritten)");
            }
        }

        var beyond = bySequence.Keys.DefaultIfEmpty().Max();
        if (beyond > last)
        {
            failure.At(last + 1, $"a signed checkpoint covers sequence {beyond} but the chain ends at {last} (truncated)");
        }

        if (failure.Sequence is not null)
        {
            return AuditVerification.Broken(checkedCount, state.AnchorSequence + 1, last, verified, failure.Sequence.Value, failure.Problem);
        }

        // The walk got through: every required checkpoint must be there, and the chain must reach what this process saw.
        CheckRequiredCheckpoints(state, anchor, bySequence.Values.Where(c => c.Sequence <= last).OrderBy(c => c.Sequence), Math.Max(last, state.HeadSequence), failure);
        if (state.WitnessSequence > last)
        {
            failure.At(last + 1, $"records {last + 1}..{state.WitnessSequence} are missing: this broker appended or saw record {state.WitnessSequence}, but the chain ends at {last} (rolled back)");
        }
        else if (witnessedHash is not null && witnessedHash != state.WitnessHash)
        {
            failure.At(state.WitnessSequence, $"record {state.WitnessSequence} differs from the one this broker appended or saw (rewritten)");
        }

        return failure.Sequence is { } broken
            ? AuditVerification.Broken(checkedCount, state.AnchorSequence + 1, last, verified, broken, failure.Problem)
            : new AuditVerification(true, checkedCount, state.AnchorSequence + 1, last, verified, null, "");
    }

    /// <summary>A chain anchored past genesis must be anchored at a checkpoint the broker signed.</summary>
    private static void CheckAnchor(AuditLogState state, IReadOnlyCollection<IAuditSigner> signers, Failure failure)
    {
        if (state.AnchorSequence == 0 && state.AnchorHash == AuditChain.GenesisHash)
        {
            return;
        }

        var anchor = state.Anchor;
        var signer = anchor is null ? null : signers.FirstOrDefault(s => s.KeyId == anchor.KeyId);
        if (anchor is null || anchor.Sequence != state.AnchorSequence || anchor.Hash != state.AnchorHash || signer is null || !anchor.IsSignedBy(signer))
        {
            failure.At(state.AnchorSequence + 1,
                $"the chain is anchored at {state.AnchorSequence} without a validly signed anchor ({anchor?.KeyId ?? "none"}): records up to {state.AnchorSequence} were dropped or replaced outside retention (re-anchored)");
        }
    }

    /// <summary>
    /// A signed checkpoint is due at least every interval records after the anchor: the larger of this
    /// process's configured interval and the one signed into the previous checkpoint (so a changed
    /// interval still verifies). A gap means checkpoints were deleted, or records rewritten past them.
    /// </summary>
    private static void CheckRequiredCheckpoints(AuditLogState state, AuditCheckpoint? anchor, IEnumerable<AuditCheckpoint> verified, long end, Failure failure)
    {
        var configured = state.CheckpointInterval > 0 ? state.CheckpointInterval : new AuditLogOptions().CheckpointInterval;
        var (previous, interval) = (state.AnchorSequence, Math.Max(configured, anchor?.Interval ?? configured));
        foreach (var checkpoint in verified)
        {
            if (checkpoint.Sequence > previous + interval)
            {
                break;
            }

            (previous, interval) = (checkpoint.Sequence, Math.Max(configured, checkpoint.Interval));
        }

        if (end >= previous + interval)
        {
            failure.At(previous + interval,
                $"the signed checkpoint required at {previous + interval} is missing (one is due every {interval} records after {previous}): checkpoints were deleted or records rewritten");
        }
    }

    /// <summary>True when the record breaks the chain (recorded in <paramref name="failure"/>).</summary>
    private static bool Check(AuditRecord record, long expected, string previousHash, Dictionary<long, AuditCheckpoint> checkpoints, Failure failure)
    {
        if (record.Sequence > expected)
        {
            failure.At(expected, $"record {expected} is missing: the chain jumps from {expected - 1} to {record.Sequence} (deleted)");
            return true;
        }

        if (record.Sequence < expected)
        {
            failure.At(record.Sequence, $"record {record.Sequence} appears again after {expected - 1} (duplicated or reordered)");
            return true;
        }

        if (AuditChain.Hash(record.Sequence, record.PreviousHash, record.Body) != record.Hash)
        {
            failure.At(record.Sequence, $"record {record.Sequence} does not match its hash (edited)");
            return true;
        }

        if (record.PreviousHash != previousHash)
        {
            // Its own hash holds, so the record before it was replaced (with a recomputed hash), or this one was reinserted.
            var at = record.Sequence - 1 > 0 ? record.Sequence - 1 : record.Sequence;
            failure.At(at, $"record {record.Sequence} does not commit to record {record.Sequence - 1}: record {at} was rewritten");
            return true;
        }

        if (checkpoints.TryGetValue(record.Sequence, out var checkpoint) && checkpoint.Hash != record.Hash)
        {
            failure.At(record.Sequence, $"the chain at {record.Sequence} differs from the signed checkpoint of {checkpoint.Time:O} (records up to {record.Sequence} were rewritten)");
            return true;
        }

        return false;
    }

    private sealed class Failure
    {
        public long? Sequence { get; private set; }

        public string Problem { get; private set; } = "";

        public void At(long sequence, string problem)
        {
            if (Sequence is null || sequence < Sequence)
            {
                (Sequence, Problem) = (sequence, problem);
            }
        }
    }
}
