namespace CredBroker.Core.Delegation;

/// <summary>Limits on delegation chains.</summary>
public sealed record DelegationOptions
{
    /// <summary>The deepest sub-agent chain allowed: the number of parent leases above a lease (a direct child has 1).</summary>
    public const int DefaultMaxDepth = 4;

    /// <summary>Bounded so the nested <c>act</c> claim stays readable by strict parsers and tokens stay under 4 KB.</summary>
    public const int MaxAllowedDepth = 5;

    public int MaxDepth { get; init; } = DefaultMaxDepth;

    public void Validate()
    {
        if (MaxDepth is < 0 or > MaxAllowedDepth)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDepth), MaxDepth, $"Delegation MaxDepth must be between 0 (no sub-agents) and {MaxAllowedDepth}.");
        }
    }
}
