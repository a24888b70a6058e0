namespace CredBroker.Core.Audit;

/// <summary>
/// The result of checking the chain: intact, or the first sequence number at which it is broken
/// and what is wrong there.
/// </summary>
public sealed record AuditVerification(
    bool Intact, long RecordsChecked, long FirstSequence, long LastSequence, int CheckpointsVerified, long? FirstBrokenSequence, string Problem)
{
    public static AuditVerification Broken(long records, long first, long last, int checkpoints, long at, string problem) =>
        new(false, records, first, last, checkpoints, at, problem);
}
