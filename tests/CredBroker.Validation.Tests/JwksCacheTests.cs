using CredBroker.Core.Tokens;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

public sealed class JwksCacheTests
{
    private TestTokens _tokens = null!;
    private SigningKey _next = null!;
    private FakeJwksEndpoint _endpoint = null!;
    private JwksCache _cache = null!;
    private AccessTokenValidator _validator = null!;

    [SetUp]
    public async Task SetUp()
    {
        _tokens = new TestTokens();
        _next = SigningKey.Generate();
        _endpoint = new FakeJwksEndpoint(TestTokens.JwksOf(_tokens.Key));
        _cache = new JwksCache(_endpoint.FetchAsync, _tokens.Clock);
        _validator = new AccessTokenValidator(TestTokens.Options(), _cache);
        Assert.That(await _cache.RefreshAsync(), Is.True);
    }

    [TearDown]
    public void TearDown()
    {
        _next.Dispose();
        _tokens.Dispose();
    }

    [Test]
    public async Task Rotation_TokenOfANewKey_RefreshesOnceAndValidates()
    {
        _endpoint.Document = TestTokens.JwksOf(_tokens.Key, _next);
        _tokens.Clock.Advance(TimeSpan.FromSeconds(30)); // MinRefreshInterval since the initial load
        var token = _tokens.Sign(key: _next);

        var first = await _validator.ValidateAsync(token, _tokens.Now);
        var second = await _validator.ValidateAsync(token, _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(first.IsValid, Is.True, first.ToString());
            Assert.That(second.IsValid, Is.True, second.ToString());
            Assert.That(_endpoint.Fetches, Is.EqualTo(2), "the initial load and one refresh for the new kid");
        });
    }

    [Test]
    public async Task UnknownKid_RightAfterALoad_WaitsForMinRefreshInterval()
    {
        _endpoint.Document = TestTokens.JwksOf(_tokens.Key, _next);
        var token = _tokens.Sign(key: _next);

        var early = await _validator.ValidateAsync(token, _tokens.Now);
        _tokens.Clock.Advance(TimeSpan.FromSeconds(30));
        var later = await _validator.ValidateAsync(token, _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(early.Error, Is.EqualTo(TokenErrors.UnknownKey));
            Assert.That(later.IsValid, Is.True, later.ToString());
            Assert.That(_endpoint.Fetches, Is.EqualTo(2));
        });
    }

    [Test]
    public void SynchronousValidate_NeverFetches_UnknownKidStaysUnknown()
    {
        _endpoint.Document = TestTokens.JwksOf(_tokens.Key, _next);

        var result = _validator.Validate(_tokens.Sign(key: _next), _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(result.Error, Is.EqualTo(TokenErrors.UnknownKey));
            Assert.That(_endpoint.Fetches, Is.EqualTo(1));
        });
    }

    [Test]
    public async Task UnknownKidStorm_AtMostOneFetchPerInterval()
    {
        _tokens.Clock.Advance(TimeSpan.FromSeconds(31));
        var forged = Enumerable.Range(0, 200).Select(i => _tokens.Sign(_tokens.Header($"forged-{i}"), _tokens.Payload())).ToList();

        var results = await Task.WhenAll(forged.Select(t => _validator.ValidateAsync(t, _tokens.Now)));
        Assert.That(results.Select(r => r.Error), Is.All.EqualTo(TokenErrors.UnknownKey));
        Assert.That(_endpoint.Fetches, Is.EqualTo(2), "one refresh for the whole storm");

        _tokens.Clock.Advance(TimeSpan.FromSeconds(29));
        await Task.WhenAll(forged.Select(t => _validator.ValidateAsync(t, _tokens.Now)));
        Assert.That(_endpoint.Fetches, Is.EqualTo(2), "still inside MinRefreshInterval");

        _tokens.Clock.Advance(TimeSpan.FromSeconds(1));
        await Task.WhenAll(forged.Select(t => _validator.ValidateAsync(t, _tokens.Now)));
        Assert.That(_endpoint.Fetches, Is.EqualTo(3), "the next interval allows one more");
    }

    [Test]
    public async Task ConcurrentCallers_ShareOneRefreshInFlight()
    {
        _tokens.Clock.Advance(TimeSpan.FromMinutes(1));
        _endpoint.Document = TestTokens.JwksOf(_tokens.Key, _next);
        _endpoint.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var lookups = Enumerable.Range(0, 20).Select(_ => _cache.FindKeyAsync(_next.Kid)).ToList();
        var explicitRefresh = _cache.RefreshAsync();
        _endpoint.Gate.SetResult();
        var keys = await Task.WhenAll(lookups);

        Assert.Multiple(async () =>
        {
            Assert.That(keys.Select(k => k?.Kid), Is.All.EqualTo(_next.Kid));
            Assert.That(await explicitRefresh, Is.True);
            Assert.That(_endpoint.Fetches, Is.EqualTo(2));
        });
    }

    [Test]
    public async Task FailedFetch_KeepsTheLastGoodKeys()
    {
        _endpoint.Failure = new HttpRequestException("broker down");
        _tokens.Clock.Advance(TimeSpan.FromMinutes(10));

        var refreshed = await _cache.RefreshAsync();
        var result = await _validator.ValidateAsync(_tokens.Mint().AccessToken, _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(refreshed, Is.False);
            Assert.That(_cache.LastError, Is.InstanceOf<HttpRequestException>());
            Assert.That(result.IsValid, Is.True, result.ToString());
        });
    }

    [TestCase("not json")]
    [TestCase("{\"keys\":{}}")]
    [TestCase("{\"keys\":[],\"keys\":[]}")]
    public async Task UnparseableJwks_CountsAsFailure_KeepsTheLastGoodKeys(string document)
    {
        _endpoint.Document = document;

        Assert.That(await _cache.RefreshAsync(), Is.False);
        Assert.That(_cache.LastError, Is.InstanceOf<FormatException>());
        Assert.That(_validator.Validate(_tokens.Mint().AccessToken, _tokens.Now).IsValid, Is.True);
    }

    [Test]
    public async Task StaleBeyondMaxStaleness_FailsClosed()
    {
        _endpoint.Failure = new HttpRequestException("broker down");
        _tokens.Clock.Advance(TimeSpan.FromHours(1));
        Assert.That(_validator.Validate(_tokens.Sign(), _tokens.Now).IsValid, Is.True, "exactly MaxStaleness old is still fresh");

        _tokens.Clock.Advance(TimeSpan.FromSeconds(1));
        var now = _tokens.Now;
        var fresh = _tokens.Sign();

        Assert.Multiple(async () =>
        {
            Assert.That(_cache.IsStale(now), Is.True);
            Assert.That(_validator.Validate(fresh, now).Error, Is.EqualTo(TokenErrors.JwksStale));
            Assert.That((await _validator.ValidateAsync(fresh, now)).Error, Is.EqualTo(TokenErrors.JwksStale));
        });
    }

    [Test]
    public async Task Stale_ThenBrokerBack_AsyncValidationRefreshesAndAccepts()
    {
        _tokens.Clock.Advance(TimeSpan.FromHours(2));

        var result = await _validator.ValidateAsync(_tokens.Sign(), _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(result.IsValid, Is.True, result.ToString());
            Assert.That(_endpoint.Fetches, Is.EqualTo(2));
        });
    }

    [Test]
    public async Task NeverLoaded_FailsClosed()
    {
        var endpoint = new FakeJwksEndpoint("{}") { Failure = new HttpRequestException("down") };
        var validator = new AccessTokenValidator(TestTokens.Options(), new JwksCache(endpoint.FetchAsync, _tokens.Clock));
        var token = _tokens.Mint().AccessToken;

        Assert.That(validator.Validate(token, _tokens.Now).Error, Is.EqualTo(TokenErrors.JwksStale));
        Assert.That((await validator.ValidateAsync(token, _tokens.Now)).Error, Is.EqualTo(TokenErrors.JwksStale));
    }

    [Test]
    public async Task RetiredKey_TokensRejectedAfterRefresh()
    {
        _endpoint.Document = TestTokens.JwksOf(_tokens.Key, _next);
        await _cache.RefreshAsync();
        var oldKeyToken = _tokens.Sign();
        Assert.That(_validator.Validate(oldKeyToken, _tokens.Now).IsValid, Is.True);

        _endpoint.Document = TestTokens.JwksOf(_next);
        await _cache.RefreshAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(_validator.Validate(oldKeyToken, _tokens.Now).Error, Is.EqualTo(TokenErrors.UnknownKey));
            Assert.That((await _validator.ValidateAsync(oldKeyToken, _tokens.Now)).Error, Is.EqualTo(TokenErrors.UnknownKey));
            Assert.That(_validator.Validate(_tokens.Sign(key: _next), _tokens.Now).IsValid, Is.True);
        });
    }

    [Test]
    public async Task RunAsync_RefreshesImmediately_AndStopsOnCancellation()
    {
        var fetched = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var endpoint = new FakeJwksEndpoint(TestTokens.JwksOf(_tokens.Key));
        var cache = new JwksCache(async ct => { var json = await endpoint.FetchAsync(ct); fetched.TrySetResult(); return json; }, _tokens.Clock);
        using var cts = new CancellationTokenSource();

        var loop = cache.RunAsync(TimeSpan.FromHours(1), cts.Token);
        await fetched.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Multiple(() =>
        {
            Assert.That(cache.Current?.Find(_tokens.Key.Kid), Is.Not.Null);
            Assert.That(endpoint.Fetches, Is.EqualTo(1));
            Assert.That(loop.IsCompletedSuccessfully, Is.True);
        });
    }
}
