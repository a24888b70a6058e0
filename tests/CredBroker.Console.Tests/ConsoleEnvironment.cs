using System.Diagnostics;
using CredBroker.Testing;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace CredBroker.Console.Tests;

/// <summary>
/// A production broker (real Redis) whose console signs in through a real OpenID provider
/// (npm oidc-provider, started here), and Debian's headless chromium driven by Selenium through
/// Debian's chromium-driver. Roles come from the provider's group claim, mapped by
/// Operators:Grants exactly as for operator credentials.
/// </summary>
public sealed class ConsoleEnvironment : IAsyncDisposable
{
    public const string ClientId = "credbroker-console";
    public const string Triage = "system:serviceaccount:support:triage";

    /// <summary>Generous: the machine is shared and chromium is slow to start on it.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly RedisServer _redis;
    private readonly Process _idp;
    private readonly string _profile = Directory.CreateTempSubdirectory("credbroker-chromium-").FullName;

    private ConsoleEnvironment(RedisServer redis, Process idp, ProductionBroker broker, int consolePort, int idpPort)
    {
        _redis = redis;
        _idp = idp;
        Broker = broker;
        ConsolePort = consolePort;
        IdpPort = idpPort;
    }

    public ProductionBroker Broker { get; }

    public int ConsolePort { get; }

    public int IdpPort { get; }

    public string ConsoleUrl => $"http://127.0.0.1:{ConsolePort}";

    public ChromeDriver Driver { get; private set; } = null!;

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Starts the test OpenID provider (tests/console/oidc) on <paramref name="port"/> for a client redirecting to <paramref name="redirectUri"/>.</summary>
    public static async Task<Process> StartIdpAsync(int port, string redirectUri)
    {
        var oidc = Path.Combine(RepositoryRoot, "tests", "console", "oidc");
        if (!Directory.Exists(Path.Combine(oidc, "node_modules", "oidc-provider")))
        {
            Assert.Fail($"npm oidc-provider is not installed: run `npm ci` in {oidc} (tests/run.sh does).");
        }

        var idp = Process.Start(new ProcessStartInfo("node", [Path.Combine(oidc, "idp.mjs"), port.ToString(), redirectUri, ClientId])
        {
            WorkingDirectory = oidc,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        idp.OutputDataReceived += (_, _) => { };
        idp.ErrorDataReceived += (_, _) => { };
        idp.BeginOutputReadLine();
        idp.BeginErrorReadLine();
        await WaitForHttpAsync($"http://127.0.0.1:{port}/.well-known/openid-configuration", idp);
        return idp;
    }

    public static async Task<ConsoleEnvironment> StartAsync()
    {
        var (consolePort, idpPort) = (RedisServer.FreePort(), RedisServer.FreePort());
        var idp = await StartIdpAsync(idpPort, $"http://127.0.0.1:{consolePort}/signin-oidc");

        var redis = RedisServer.Start();
        var broker = new ProductionBroker();
        var authority = $"http://127.0.0.1:{idpPort}";
        await broker.StartAsync(redis.ConnectionString,
            $"--CredBroker:Listen:ConsolePort={consolePort}",
            $"--CredBroker:Console:Oidc:Authority={authority}",
            $"--CredBroker:Console:Oidc:ClientId={ClientId}",
            $"--CredBroker:Operators:Subjects:0={ProductionBroker.Issuer}|{ProductionBroker.Operator}",
            $"--CredBroker:Operators:Issuers:1:Issuer={authority}",
            $"--CredBroker:Operators:Issuers:1:Audience={ClientId}",
            $"--CredBroker:Operators:Issuers:1:JwksUri={authority}/jwks",
            $"--CredBroker:Operators:Grants:0:Issuer={authority}",
            "--CredBroker:Operators:Grants:0:Group=credbroker-viewers",
            "--CredBroker:Operators:Grants:0:Roles:0=Viewer",
            $"--CredBroker:Operators:Grants:1:Issuer={authority}",
            "--CredBroker:Operators:Grants:1:Group=credbroker-approvers",
            "--CredBroker:Operators:Grants:1:Roles:0=Approver",
            $"--CredBroker:Operators:Grants:2:Issuer={authority}",
            "--CredBroker:Operators:Grants:2:Group=credbroker-admins",
            "--CredBroker:Operators:Grants:2:Roles:0=Admin");
        var environment = new ConsoleEnvironment(redis, idp, broker, consolePort, idpPort);
        environment.StartBrowser();
        return environment;
    }

    private void StartBrowser()
    {
        // Debian's chromium and chromium-driver, named explicitly: Selenium Manager never runs, nothing is downloaded.
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
            "--no-first-run", "--disable-extensions", "--user-data-dir=" + _profile);
        Driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(120));
        Driver.Manage().Timeouts().PageLoad = Patience;
    }

    private static async Task WaitForHttpAsync(string url, Process process)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            Assert.That(process.HasExited, Is.False, "the OpenID provider exited at start");
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{url} did not answer");
            await Task.Delay(100);
        }
    }

    public WebDriverWait Wait() => new(Driver, Patience) { PollingInterval = TimeSpan.FromMilliseconds(100) };

    public void Open(string path) => Driver.Navigate().GoToUrl(ConsoleUrl + path);

    /// <summary>Signs in through the provider's own login form as <paramref name="account"/>; ends on the approvals page.</summary>
    public void SignIn(string account)
    {
        SignOut();
        Open("/signin");
        Driver.FindElement(By.LinkText("Sign in with your organisation")).Click();
        Wait().Until(d => d.FindElements(By.Name("login")).Count > 0);
        Driver.FindElement(By.Name("login")).SendKeys(account);
        Driver.FindElement(By.Name("password")).SendKeys("any password");
        Driver.FindElement(By.CssSelector("button[type=submit]")).Click();
        Wait().Until(d => d.Url.StartsWith(ConsoleUrl, StringComparison.Ordinal) && !d.Url.Contains("/signin-oidc", StringComparison.Ordinal));
    }

    /// <summary>Cookies are per host, not port: this forgets both the console session and the provider's.</summary>
    public void SignOut()
    {
        Open("/assets/console.css");
        Driver.Manage().Cookies.DeleteAllCookies();
    }

    public IWebElement WaitFor(By by) => Wait().Until(d => d.FindElements(by).FirstOrDefault(e => e.Displayed));

    /// <summary>Saves a screenshot of the current page to docs/console/<paramref name="name"/>.png.</summary>
    public void Screenshot(string name)
    {
        var directory = Path.Combine(RepositoryRoot, "docs", "console");
        Directory.CreateDirectory(directory);
        Driver.GetScreenshot().SaveAsFile(Path.Combine(directory, name + ".png"));
    }

    /// <summary>Runs fetch() in the page (same origin, the session cookie) and returns "status body".</summary>
    public string Fetch(string method, string path, string formBody)
    {
        var result = ((IJavaScriptExecutor)Driver).ExecuteAsyncScript(
            """
            const done = arguments[arguments.length - 1];
            fetch(arguments[1], { method: arguments[0], credentials: 'same-origin', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: arguments[2] })
              .then(r => r.text().then(t => done(r.status + ' ' + t)))
              .catch(e => done('error ' + e));
            """, method, path, formBody);
        return result as string ?? "no result";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Driver?.Quit();
        }
        finally
        {
            Driver?.Dispose();
            await Broker.DisposeAsync();
            _redis.Dispose();
            if (!_idp.HasExited)
            {
                _idp.Kill(entireProcessTree: true);
            }

            _idp.Dispose();
            try
            {
                Directory.Delete(_profile, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
