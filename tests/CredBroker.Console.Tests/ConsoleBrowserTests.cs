using CredBroker.Client;
using CredBroker.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenQA.Selenium;
using OpenQA.Selenium.Interactions;

namespace CredBroker.Console.Tests;

/// <summary>
/// The console in a real browser (headless chromium), signed in through a real OpenID provider:
/// a viewer cannot approve, an approver approves (narrower) and the watching agent gets its token,
/// a denial with a reason, a revocation, the CSRF refusal, keyboard navigation and labelled
/// controls; and the screenshots in docs/console.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConsoleBrowserTests
{
    private ConsoleEnvironment _env = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _env = await ConsoleEnvironment.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_env is not null)
        {
            await _env.DisposeAsync();
        }
    }

    /// <summary>A failed test leaves the page's screenshot and source as test attachments.</summary>
    [TearDown]
    public void KeepEvidence()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status != NUnit.Framework.Interfaces.TestStatus.Failed || _env?.Driver is null)
        {
            return;
        }

        var stem = Path.Combine(TestContext.CurrentContext.WorkDirectory, TestContext.CurrentContext.Test.Name);
        _env.Driver.GetScreenshot().SaveAsFile(stem + ".png");
        File.WriteAllText(stem + ".html", _env.Driver.Url + "\n" + _env.Driver.PageSource);
        TestContext.AddTestAttachment(stem + ".png");
        TestContext.AddTestAttachment(stem + ".html");
    }

    private static BeginTaskRequest ExportRequest() => new()
    {
        TaskId = "export-" + Guid.NewGuid().ToString("N")[..10],
        Purpose = "export this week's escalations for the quarterly review",
        Scopes = { "tickets:read", "tickets:export" },
        Audience = "tickets-api",
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)),
    };

    private By Approval(string id) => By.CssSelector($"section[data-approval='{id}']");

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + ConsoleEnvironment.Patience;
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    [Test]
    public async Task Viewer_SeesThePendingRequest_ButCannotApproveIt()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        var begun = await agent.BeginTaskAsync(ExportRequest());

        _env.SignIn("viewer@example.com");
        _env.Open("/approvals");
        var card = _env.WaitFor(Approval(begun.ApprovalId));
        Assert.That(card.Text, Does.Contain("triage-agent").And.Contain("support-team@example.com").And.Contain("tickets:export"));
        Assert.That(card.FindElements(By.TagName("button")), Is.Empty, "a viewer gets no decision controls");
        Assert.That(_env.Driver.FindElement(By.CssSelector(".hint")).Text, Does.Contain("needs the approver role"));

        // Posting the decision anyway, with a valid anti-forgery token, is refused by the same role check as the gRPC API.
        var token = _env.Driver.FindElement(By.CssSelector("form[action='/signout'] input[name='__RequestVerificationToken']")).GetAttribute("value");
        var answer = _env.Fetch("POST", $"/approvals/{begun.ApprovalId}/approve", $"__RequestVerificationToken={Uri.EscapeDataString(token!)}&scope=tickets%3Aexport");
        Assert.That(answer, Does.StartWith("403 ").And.Contain("DecideApproval needs the operator role &#x27;approver&#x27;"));
        using var operators = _env.Broker.OperatorClient();
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("pending_approval"));
    }

    [Test]
    public async Task ThePendingList_IsLive_ANewRequestAppearsWithoutAReload()
    {
        _env.SignIn("viewer@example.com");
        _env.Open("/approvals");
        _env.WaitFor(By.Id("approvals"));
        ((IJavaScriptExecutor)_env.Driver).ExecuteScript("window.sameDocument = true;");

        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        var begun = await agent.BeginTaskAsync(ExportRequest());
        _env.WaitFor(Approval(begun.ApprovalId));
        Assert.That(((IJavaScriptExecutor)_env.Driver).ExecuteScript("return window.sameDocument === true;"), Is.True, "refreshed in place, not reloaded");
    }

    [Test]
    public async Task Approver_ApprovesNarrowerInThePage_AndTheWatchingAgentGetsItsToken()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        using var cancel = new CancellationTokenSource(ConsoleEnvironment.Patience * 2);
        var begun = await agent.BeginTaskAsync(ExportRequest());
        var watched = Task.Run(async () =>
        {
            await foreach (var status in agent.WatchApprovalAsync(begun.ApprovalId, cancel.Token))
            {
                if (status.AccessToken.Length > 0 || status.State != "pending")
                {
                    return status;
                }
            }

            return null;
        }, cancel.Token);

        _env.SignIn("approver@example.com");
        _env.Open("/approvals");
        var card = _env.WaitFor(Approval(begun.ApprovalId));
        _env.Screenshot("approvals");
        // Approve narrower: untick tickets:read, keep tickets:export.
        card.FindElement(By.CssSelector("input[type=checkbox][value='tickets:read']")).Click();
        card.FindElement(By.CssSelector("form.approve input[name=note]")).SendKeys("export only");
        card.FindElement(By.XPath(".//button[normalize-space()='Approve']")).Click();
        var notice = _env.WaitFor(By.CssSelector(".alert.ok"));
        Assert.That(notice.Text, Does.Contain($"Approved {begun.ApprovalId} with tickets:export"));

        var status = await watched;
        Assert.That(status, Is.Not.Null);
        Assert.That(status!.State, Is.EqualTo("approved"));
        Assert.That(status.GrantedScopes, Is.EqualTo(new[] { "tickets:export" }));
        var token = new JsonWebToken(status.AccessToken);
        Assert.That(token.GetClaim("scope").Value, Is.EqualTo("tickets:export"));
        using var operators = _env.Broker.OperatorClient();
        var decided = (await operators.QueryAuditAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "approval.decided" } }).ToListAsync()).Single().Event;
        Assert.That((decided.Operator, decided.Reason, decided.Details["verdict"], decided.Details["narrowed"]), Is.EqualTo(("approver@example.com", "export only", "approve", "true")),
            "the same audit record as over gRPC, attributed to the signed-in approver");
    }

    [Test]
    public async Task Approver_DeniesWithAReason_AndTheAgentSeesTheDenial()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        var begun = await agent.BeginTaskAsync(ExportRequest());

        _env.SignIn("approver@example.com");
        _env.Open("/approvals");
        var card = _env.WaitFor(Approval(begun.ApprovalId));
        card.FindElement(By.CssSelector("form.deny input[name=reason]")).SendKeys("no exports during the freeze");
        card.FindElement(By.XPath(".//button[normalize-space()='Deny']")).Click();
        Assert.That(_env.WaitFor(By.CssSelector(".alert.ok")).Text, Does.Contain("Denied").And.Contain("no exports during the freeze"));
        Assert.That(_env.Driver.FindElements(Approval(begun.ApprovalId)), Is.Empty, "no longer pending");

        using var operators = _env.Broker.OperatorClient();
        var decided = (await operators.QueryAuditAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "approval.decided" } }).ToListAsync()).Single().Event;
        Assert.That((decided.Operator, decided.Reason, decided.Details["verdict"]), Is.EqualTo(("approver@example.com", "no exports during the freeze", "deny")));
        using var cancel = new CancellationTokenSource(ConsoleEnvironment.Patience);
        await foreach (var status in agent.WatchApprovalAsync(begun.ApprovalId, cancel.Token))
        {
            Assert.That(status.State, Is.EqualTo("denied"));
            break;
        }
    }

    [Test]
    public async Task Admin_RevokesALeaseWithAReason_FromItsDetailPage()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        var begun = await agent.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "triage-" + Guid.NewGuid().ToString("N")[..10], Purpose = "triage the inbox", Scopes = { "tickets:read", "tickets:comment" },
            Audience = "tickets-api", Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)),
        });
        var jti = new JsonWebToken(begun.AccessToken).Id;

        _env.SignIn("admin@example.com");
        _env.Open("/leases?agent=triage-agent&state=active");
        _env.WaitFor(By.LinkText(begun.LeaseId)).Click();
        _env.Wait().Until(d => d.Url.EndsWith("/leases/" + begun.LeaseId, StringComparison.Ordinal));
        _env.WaitFor(By.CssSelector("code.jti"));
        Assert.That(_env.Driver.FindElements(By.CssSelector("code.jti")).Select(e => e.Text), Does.Contain(jti), "the lease's tokens by jti");
        Assert.That(_env.Driver.FindElement(By.CssSelector("table.audit")).Text, Does.Contain("token.minted"));
        _env.Screenshot("lease");

        _env.Driver.FindElement(By.Id("revoke-reason")).SendKeys("suspected prompt injection");
        _env.Driver.FindElement(By.XPath("//button[normalize-space()='Revoke lease']")).Click();
        Assert.That(_env.WaitFor(By.CssSelector(".alert.ok")).Text, Does.Contain($"Lease {begun.LeaseId} revoked"));
        Assert.That(_env.Driver.FindElement(By.CssSelector("table.audit")).Text, Does.Contain("lease.revoked").And.Contain("suspected prompt injection"));

        using var operators = _env.Broker.OperatorClient();
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("revoked"));
        var revoked = await operators.QueryAuditAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "lease.revoked" } }).ToListAsync();
        Assert.That((revoked.Single().Event.Operator, revoked.Single().Event.Reason), Is.EqualTo(("admin@example.com", "suspected prompt injection")));
    }

    [Test]
    public async Task Post_WithoutTheAntiforgeryToken_IsRefusedAndChangesNothing()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        var begun = await agent.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "csrf-" + Guid.NewGuid().ToString("N")[..10], Purpose = "triage", Scopes = { "tickets:read" }, Audience = "tickets-api",
        });

        _env.SignIn("admin@example.com");
        _env.Open("/leases/" + begun.LeaseId);
        _env.WaitFor(By.Id("revoke-reason"));
        var answer = _env.Fetch("POST", $"/leases/{begun.LeaseId}/revoke", "reason=forged");
        Assert.That(answer, Does.StartWith("400 ").And.Contain("anti-forgery token is missing or invalid"));
        var forged = _env.Fetch("POST", $"/leases/{begun.LeaseId}/revoke", "reason=forged&__RequestVerificationToken=made-up");
        Assert.That(forged, Does.StartWith("400 "));

        using var operators = _env.Broker.OperatorClient();
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("active"));
    }

    [Test]
    public void SignIn_WithoutAnOperatorRole_IsRefused()
    {
        _env.SignIn("nobody@example.com");
        _env.Wait().Until(d => d.Url.Contains("/signin?refused=1", StringComparison.Ordinal));
        Assert.That(_env.WaitFor(By.CssSelector(".alert.error")).Text, Does.Contain("not granted an operator role"));
        _env.Open("/approvals");
        _env.Wait().Until(d => d.Url.EndsWith("/signin", StringComparison.Ordinal));
    }

    [Test]
    public void EveryControlIsLabelled_AndTheConsoleWorksFromTheKeyboard()
    {
        _env.SignIn("admin@example.com");
        foreach (var page in new[] { "/approvals", "/leases", "/agents", "/audit", "/policy" })
        {
            _env.Open(page);
            _env.WaitFor(By.TagName("h1"));
            var unlabelled = ((IJavaScriptExecutor)_env.Driver).ExecuteScript(
                """
                return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
                  .filter(e => !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label'))
                  .map(e => e.outerHTML);
                """);
            Assert.That((System.Collections.ObjectModel.ReadOnlyCollection<object>)unlabelled!, Is.Empty, $"{page}: every control has a label");
            var unnamed = _env.Driver.FindElements(By.CssSelector("button, a")).Where(e => e.Displayed && string.IsNullOrWhiteSpace(e.Text)).ToList();
            Assert.That(unnamed, Is.Empty, $"{page}: every button and link has a visible name");
            Assert.That(_env.Driver.FindElement(By.CssSelector("nav[aria-label='Main'] a[aria-current='page']")).GetAttribute("href"), Does.EndWith(page));
        }

        // From the top of a page: the skip link first, then the navigation; Enter follows a link.
        _env.Open("/approvals");
        _env.WaitFor(By.TagName("h1"));
        var keys = new Actions(_env.Driver);
        keys.SendKeys(Keys.Tab).Perform();
        Assert.That(_env.Driver.SwitchTo().ActiveElement().Text, Is.EqualTo("Skip to content"));
        keys.SendKeys(Keys.Tab).Perform();
        Assert.That(_env.Driver.SwitchTo().ActiveElement().Text, Is.EqualTo("Approvals"));
        keys.SendKeys(Keys.Tab).Perform();
        Assert.That(_env.Driver.SwitchTo().ActiveElement().Text, Is.EqualTo("Leases"));
        keys.SendKeys(Keys.Enter).Perform();
        _env.Wait().Until(d => d.Url.EndsWith("/leases", StringComparison.Ordinal));

        // The filter form is reachable and usable by keyboard alone: Tab to the agent field, type, Enter submits.
        _env.WaitFor(By.Id("f-agent"));
        for (var i = 0; i < 12 && _env.Driver.SwitchTo().ActiveElement().GetAttribute("id") != "f-agent"; i++)
        {
            keys.SendKeys(Keys.Tab).Perform();
        }

        Assert.That(_env.Driver.SwitchTo().ActiveElement().GetAttribute("id"), Is.EqualTo("f-agent"));
        keys.SendKeys("billing-agent").SendKeys(Keys.Enter).Perform();
        _env.Wait().Until(d => d.Url.Contains("agent=billing-agent", StringComparison.Ordinal));
    }

    [Test]
    public async Task Screenshots_OfTheMainPages()
    {
        using var agent = _env.Broker.ClientFor(ConsoleEnvironment.Triage);
        await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "shot-" + Guid.NewGuid().ToString("N")[..8], Purpose = "triage", Scopes = { "tickets:read" }, Audience = "tickets-api" });

        _env.SignIn("admin@example.com");
        _env.Open("/leases");
        _env.WaitFor(By.CssSelector("table"));
        _env.Screenshot("leases");
        _env.Open("/agents");
        _env.WaitFor(By.CssSelector("table"));
        _env.Screenshot("agents");
        _env.Open("/audit");
        _env.WaitFor(By.CssSelector("table.audit"));
        _env.Driver.FindElement(By.XPath("//button[normalize-space()='Verify the audit chain']")).Click();
        Assert.That(_env.WaitFor(By.CssSelector(".alert.ok")).Text, Does.Contain("The audit chain is intact"));
        _env.Screenshot("audit");
        _env.Open("/policy");
        _env.WaitFor(By.CssSelector("#x-agent option[value='triage-agent']")).Click();
        _env.Driver.FindElement(By.Id("x-scopes")).SendKeys("tickets:read tickets:export");
        _env.Driver.FindElement(By.Id("x-audience")).SendKeys("tickets-api");
        _env.Driver.FindElement(By.XPath("//button[normalize-space()='Explain']")).Click();
        Assert.That(_env.WaitFor(By.Id("result-title")).Text, Does.Contain("require_approval"));
        _env.Screenshot("policy");
        _env.SignOut();
        _env.Open("/signin");
        _env.WaitFor(By.LinkText("Sign in with your organisation"));
        _env.Screenshot("signin");
    }
}
