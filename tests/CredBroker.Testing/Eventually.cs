namespace CredBroker.Testing;

/// <summary>Waits for a condition (polled every 100 ms) with a generous bound, for tests on a busy machine: never a fixed sleep.</summary>
public static class Eventually
{
    /// <summary>Returns once <paramref name="condition"/> holds; fails the test naming <paramref name="what"/> after 60 s.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), what);
            await Task.Delay(100);
        }
    }
}
