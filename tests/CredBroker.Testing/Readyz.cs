using System.Net;

namespace CredBroker.Testing;

/// <summary>
/// Polls a broker's <c>/readyz</c> (served from a state refreshed in the background) until the answer
/// satisfies a condition or 20 s pass, and returns the last answer: tests wait for a condition,
/// never for a fixed time.
/// </summary>
public static class Readyz
{
    public static async Task<(HttpStatusCode Status, string Body)> UntilAsync(HttpClient http, Func<HttpStatusCode, string, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var response = await http.GetAsync("/readyz");
            var body = await response.Content.ReadAsStringAsync();
            if (until(response.StatusCode, body) || DateTime.UtcNow > deadline)
            {
                return (response.StatusCode, body);
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Polls until <c>/readyz</c> answers <paramref name="hoped"/>; returns the last status.</summary>
    public static async Task<HttpStatusCode> WithinAsync(HttpClient http, HttpStatusCode hoped) =>
        (await UntilAsync(http, (status, _) => status == hoped)).Status;
}
